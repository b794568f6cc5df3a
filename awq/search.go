package awq

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/tensor"
)

// Quantizer quantizes the (already scaled) weights w [rows, cols] of layer name against h,
// the second moment of the layer's (scaled) input, and returns the dequantized weights the
// model would use. It is called concurrently for different layers.
type Quantizer func(name string, w []float32, rows, cols int, h *gptq.Hessian) ([]float32, error)

// DefaultGrid is the number of alpha steps when Options.Grid is 0: alpha = 0, 0.05, ..., 1.
const DefaultGrid = 20

// minScale bounds m^alpha from below (a channel that never fires would otherwise get a
// zero scale and an infinite inverse).
const minScale = 1e-4

// Options configures Search.
type Options struct {
	Grid int // alpha = i/Grid for i = 0..Grid; 0 means DefaultGrid
	// Duo adds the candidates s = m^alpha / (w^(1-alpha) + 1e-4), w the channel's mean
	// |weight| relative to its row's max |weight| (small weights may be scaled up more),
	// beside the plain s = m^alpha.
	Duo bool
	// Blocks, if not nil, judges the norm groups (q/k/v, gate/up) by the error of their
	// block's output on the cached inputs (see Blocks) instead of the layers' summed
	// output errors; the o_proj and down_proj groups keep the Hessian objective (their
	// layer's output is the block's output).
	Blocks *Blocks
	// Check, if not nil, makes Model keep a group's scales only if the quantized model's
	// calibration loss confirms them (Accept).
	Check *Check
}

// Check configures Accept inside Model.
type Check struct {
	Seqs     [][]int // calibration sequences for the loss
	Batch    int
	Quantize ModelQuantizer // the final quantizer of every layer
}

// Search chooses each group's scales (see the package documentation): for every candidate
// the group's layers are scaled, quantized by q against their scaled Hessians, and the
// summed output error tr(E H E^T) is measured; the candidate with the least error wins
// (ties: the earlier candidate, and s = 1 comes first). ts holds the checkpoint tensors by
// name, hs the layers' Hessians (gptq/collect.Hessians), absMean the layers' mean |x| per
// input channel (MeanAbs). Groups are searched in parallel; the result is deterministic.
func Search(ts map[string]*tensor.Tensor, groups []Group, hs map[string]*gptq.Hessian, absMean map[string][]float64, q Quantizer, opt Options) ([]Scales, error) {
	if opt.Grid < 0 {
		return nil, fmt.Errorf("awq: negative alpha grid %d", opt.Grid)
	}
	if opt.Grid == 0 {
		opt.Grid = DefaultGrid
	}
	out := make([]Scales, len(groups))
	errs := make([]error, len(groups))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = searchGroup(ts, groups[i], hs, absMean, q, opt)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// layerData is one consumer layer of a group.
type layerData struct {
	name       string
	w          []float32
	rows, cols int
	h          *gptq.Hessian
}

func searchGroup(ts map[string]*tensor.Tensor, g Group, hs map[string]*gptq.Hessian, absMean map[string][]float64, q Quantizer, opt Options) (Scales, error) {
	var ls []layerData
	for _, name := range g.Layers {
		wt := ts[name+".weight"]
		if wt == nil || len(wt.Shape) != 2 || wt.Shape[1] != g.In {
			return Scales{}, fmt.Errorf("awq: layer %s needs a 2-D weight with %d inputs", name, g.In)
		}
		h := hs[name]
		if h == nil || h.K != g.In {
			return Scales{}, fmt.Errorf("awq: layer %s has no Hessian of width %d (was it calibrated?)", name, g.In)
		}
		ls = append(ls, layerData{name, wt.ToF32(), wt.Shape[0], g.In, h})
	}
	am := absMean[g.Layers[0]]
	if len(am) != g.In {
		return Scales{}, fmt.Errorf("awq: layer %s has no mean |x| of width %d", g.Layers[0], g.In)
	}
	mEntry := g.average(am)
	var wEntry []float64
	if opt.Duo {
		wEntry = g.average(weightMagnitude(ls, g.In))
	}

	ones := make([]float32, g.Channels)
	for i := range ones {
		ones[i] = 1
	}
	errOf := func(s []float32) (float64, error) { return groupError(ls, g, s, q) }
	if opt.Blocks != nil && g.Norm {
		ref, run, err := opt.Blocks.blockFor(ts, g)
		if err != nil {
			return Scales{}, err
		}
		errOf = func(s []float32) (float64, error) { return blockError(ls, g, s, q, ref, run, opt.Blocks.Tokens()) }
	}
	best := Scales{Group: g, S: ones}
	var err error
	if best.Err0, err = errOf(ones); err != nil {
		return Scales{}, err
	}
	best.Err = best.Err0
	try := func(s []float32, alpha float64, duo bool) error {
		e, err := errOf(s)
		if err != nil {
			return err
		}
		if e < best.Err {
			best.S, best.Alpha, best.Duo, best.Err = s, alpha, duo, e
		}
		return nil
	}
	for i := 1; i <= opt.Grid; i++ {
		alpha := float64(i) / float64(opt.Grid)
		if err := try(candidate(mEntry, nil, alpha), alpha, false); err != nil {
			return Scales{}, err
		}
	}
	if opt.Duo {
		for i := 0; i <= opt.Grid; i++ {
			alpha := float64(i) / float64(opt.Grid)
			if err := try(candidate(mEntry, wEntry, alpha), alpha, true); err != nil {
				return Scales{}, err
			}
		}
	}
	return best, nil
}

// average maps per-input-channel values to scale entries (the mean over the channels
// sharing an entry).
func (g *Group) average(v []float64) []float64 {
	sum := make([]float64, g.Channels)
	n := make([]int, g.Channels)
	for c, x := range v {
		e := g.Entry(c)
		sum[e] += x
		n[e]++
	}
	for e := range sum {
		if n[e] > 0 {
			sum[e] /= float64(n[e])
		}
	}
	return sum
}

// weightMagnitude is, per input channel, the mean over all rows of the group's layers of
// |w| / max|w| of its row.
func weightMagnitude(ls []layerData, in int) []float64 {
	out := make([]float64, in)
	var rows int
	for _, l := range ls {
		for r := 0; r < l.rows; r++ {
			row := l.w[r*l.cols : (r+1)*l.cols]
			var mx float64
			for _, v := range row {
				mx = math.Max(mx, math.Abs(float64(v)))
			}
			if mx == 0 {
				continue
			}
			for c, v := range row {
				out[c] += math.Abs(float64(v)) / mx
			}
		}
		rows += l.rows
	}
	for c := range out {
		out[c] /= float64(max(rows, 1))
	}
	return out
}

// candidate returns s_e = max(m_e^alpha [/ (w_e^(1-alpha) + 1e-4)], minScale), divided
// by sqrt(max(s) min(s)) so that the scales straddle 1. alpha = 0 without w gives all 1.
func candidate(m, w []float64, alpha float64) []float32 {
	s := make([]float64, len(m))
	lo, hi := math.Inf(1), 0.0
	for i, x := range m {
		v := math.Pow(x, alpha)
		if w != nil {
			v /= math.Pow(w[i], 1-alpha) + 1e-4
		}
		v = math.Max(v, minScale)
		s[i] = v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	norm := math.Sqrt(lo * hi)
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v / norm)
	}
	return out
}

// quantizeScaled quantizes l's weights with input channel c scaled by sIn[c]: it returns the
// scaled weights, their quantization by q, and the Hessian of the inputs scaled to match.
func (l layerData) quantizeScaled(sIn []float32, q Quantizer) (w, wq []float32, h *gptq.Hessian, err error) {
	w = ScaleColumns(l.w, l.rows, l.cols, sIn)
	if h, err = ScaleHessian(l.h, sIn); err != nil {
		return nil, nil, nil, fmt.Errorf("awq: %s: %w", l.name, err)
	}
	if wq, err = q(l.name, w, l.rows, l.cols, h); err != nil {
		return nil, nil, nil, fmt.Errorf("awq: %s: %w", l.name, err)
	}
	if len(wq) != len(w) {
		return nil, nil, nil, fmt.Errorf("awq: %s: quantizer returned %d weights, want %d", l.name, len(wq), len(w))
	}
	return w, wq, h, nil
}

// groupError is the summed output error of the group's layers quantized with scales s:
// tr(E' H' E'^T) in the scaled space, equal to tr(E H E^T) in the original one.
func groupError(ls []layerData, g Group, s []float32, q Quantizer) (float64, error) {
	sIn := g.Expand(s)
	var total float64
	for _, l := range ls {
		w, wq, h, err := l.quantizeScaled(sIn, q)
		if err != nil {
			return 0, err
		}
		total += gptq.OutputError(w, wq, l.rows, l.cols, h)
	}
	return total, nil
}

// blockError is the block-output error of the group's layers quantized with scales s:
// each layer's effective weights Q(W diag s) diag(1/s) replace its weights in the block.
func blockError(ls []layerData, g Group, s []float32, q Quantizer, ref []float32, run func(map[string][]float32) []float32, tokens int) (float64, error) {
	sIn := g.Expand(s)
	eff := map[string][]float32{}
	for _, l := range ls {
		_, wq, _, err := l.quantizeScaled(sIn, q)
		if err != nil {
			return 0, err
		}
		for i := range wq {
			wq[i] /= sIn[i%l.cols]
		}
		eff[l.name] = wq
	}
	return outputError(run(eff), ref, tokens), nil
}

// ScaleColumns returns a copy of w [rows, cols] with column c multiplied by s[c].
func ScaleColumns(w []float32, rows, cols int, s []float32) []float32 {
	out := make([]float32, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[r*cols+c] = w[r*cols+c] * s[c]
		}
	}
	return out
}

// ScaleHessian returns the second moment of the inputs x / s: H' = diag(1/s) H diag(1/s).
func ScaleHessian(h *gptq.Hessian, s []float32) (*gptq.Hessian, error) {
	if len(s) != h.K {
		return nil, fmt.Errorf("awq: %d scales for a Hessian of width %d", len(s), h.K)
	}
	out := &gptq.Hessian{K: h.K, Tokens: h.Tokens, Sum: make([]float64, len(h.Sum))}
	for i := 0; i < h.K; i++ {
		for j := i; j < h.K; j++ {
			out.Sum[i*h.K+j] = h.Sum[i*h.K+j] / (float64(s[i]) * float64(s[j]))
		}
	}
	return out, nil
}
