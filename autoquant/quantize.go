package autoquant

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/rotate"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// QuantizeOptions configures Quantize (`autoq quantize`).
type QuantizeOptions struct {
	// Path is a .safetensors file, a Hugging Face directory or a llama2.c file; "" is the
	// built-in synthetic checkpoint.
	Path   string
	Scheme quant.Scheme
	// Search is max, percentile, mse, or act-mse (activation-aware: needs Data).
	Search     string
	Percentile float64 // for Search percentile
	// Include selects the 2-D weights to quantize by glob (default: every linear weight);
	// Exclude keeps matching weights in full precision.
	Include, Exclude []string
	// Method is rtn or gptq (error compensation with each layer's input Hessian: needs
	// Data).
	Method      string
	Data        string // calibration text or .jsonl token ids (gptq, act-mse); its first half is used
	Tokenizer   string // default: beside the model
	CalibTokens int
	SeqLen      int
	ActOrder    bool // GPTQ: columns by decreasing Hessian diagonal
	// ActOrderGroups is how GPTQ with ActOrder forms scale groups: static (contiguous
	// groups, no g_idx; the default) or dynamic (groups in act-order sequence, g_idx).
	ActOrderGroups string
	// Sequential is where the Hessians come from: off (the full-precision model), block
	// (each block's inputs from the already-quantized blocks) or layer (also within a block).
	Sequential string
	Damp       float64 // GPTQ damping, a fraction of the mean Hessian diagonal
	Rotate     Rotation
	Device     string
	Out        string // output checkpoint directory; "" writes nothing
	Force      bool   // replace a previous autoq quantized checkpoint at Out
}

// searchOptions checks the search and returns quant's options for the plain path (act-mse
// runs in the calibrated path).
func (q *QuantizeOptions) searchOptions() (quant.SearchOptions, error) {
	var opt quant.SearchOptions
	if err := q.Scheme.Validate(); err != nil {
		return opt, usagef("%v", err)
	}
	searchName := q.Search
	if searchName == "act-mse" {
		searchName = "max" // act-mse runs in the calibrated path (quantize_calibrated.go)
	}
	m, err := quant.ParseSearch(searchName)
	if err != nil {
		return opt, usagef("--search: %v", err)
	}
	opt.Method = m
	if m == quant.SearchPercentile {
		opt.Percentile = q.Percentile
		if !(q.Percentile > 0 && q.Percentile <= 100) {
			return opt, usagef("--percentile must be in (0, 100], got %v", q.Percentile)
		}
	}
	if err := checkpoint.CheckPatterns(append(append([]string(nil), q.Include...), q.Exclude...)...); err != nil {
		return opt, usagef("%v", err)
	}
	return opt, nil
}

// openCheckpoint opens path, or the built-in synthetic checkpoint when it is "", rotated by
// rot when it is on.
func openCheckpoint(path string, rot Rotation) (*checkpoint.Opened, string, error) {
	if path == "" {
		src, err := rot.rotateSource(Synthetic())
		if err != nil {
			return nil, "", err
		}
		m, err := checkpoint.NewMemory(src.Tensors, nil)
		if err != nil {
			return nil, "", err
		}
		return &checkpoint.Opened{Tensors: m, Config: &src.Cfg}, "synthetic", nil
	}
	o, err := rot.open(path)
	return o, path, err
}

// Quantize is `autoq quantize`: weight-only quantization of a checkpoint's 2-D weights
// with a per-tensor error report, written to Out when set.
func Quantize(env Env, q QuantizeOptions) (*QuantizeReport, error) {
	s := q.Scheme
	opt, err := q.searchOptions()
	if err != nil {
		return nil, err
	}
	cal, err := q.calibration()
	if err != nil {
		return nil, err
	}
	if err := q.Rotate.check(); err != nil {
		return nil, err
	}
	if cal != nil && q.Path == "" {
		return nil, usagef("--method gptq and --search act-mse need a model PATH (the model runs on --data)")
	}
	if err := checkOutputs(env, q.Force, []string{q.Path, q.Data, q.Tokenizer}, outDir("--out", q.Out, quantfile.OutputKind)); err != nil {
		return nil, err
	}
	eng, err := openEngine(env, q.Device)
	if err != nil {
		return nil, err
	}
	defer eng.b.Close()
	var pre map[string]*quant.QTensor
	if cal != nil {
		if pre, err = quantizeCalibrated(env, &q, cal, s, eng); err != nil {
			return nil, err
		}
	}
	src, srcName, err := openCheckpoint(q.Path, q.Rotate)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if src.ConfigErr != nil {
		// The config travels with the output: refuse to copy one that is not even JSON. A
		// valid config of an architecture autoq cannot run is fine for weight-only work.
		if b, err := os.ReadFile(filepath.Join(src.Dir, "config.json")); err != nil || !json.Valid(b) {
			return nil, fmt.Errorf("%s: %w", srcName, src.ConfigErr)
		}
		env.logf("note: %v (copied as is: weight-only quantization does not need it)\n", src.ConfigErr)
	}
	sel, err := checkpoint.SelectWeights(src, q.Include, q.Exclude)
	var unmatched *checkpoint.UnmatchedPatternError
	if errors.As(err, &unmatched) {
		return nil, usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	plan, err := planQuantized(src, sel, s, opt, pre)
	if err != nil {
		return nil, err
	}
	if cal != nil {
		plan.meta["autoq.search"] = cal.name
	}
	if q.Rotate.On() {
		plan.meta["autoq.rotate"] = q.Rotate.String()
		env.logf("rotated: %s before quantization; the output is an ordinary Llama with lm_head untied\n", q.Rotate)
	}
	rep := &QuantizeReport{Source: srcName, Device: eng.name, Fallback: eng.fallback, Scheme: s.String(),
		Bits: s.Bits, Symmetric: s.Symmetric, Granularity: s.Granularity.String(), GroupSize: s.GroupSize,
		Search: opt.Method.String(), Out: q.Out}
	if cal != nil {
		rep.Search = cal.name
	}
	if opt.Method == quant.SearchPercentile {
		rep.Percentile = opt.Percentile
	}
	if len(plan.notLinear) > 0 {
		env.logf("warning: %d selected weight(s) kept in full precision: not a linear layer of the model: %s\n",
			len(plan.notLinear), strings.Join(plan.notLinear, ", "))
	}
	rep.Refitted = plan.refitted
	if len(plan.refitted) > 0 {
		env.logf("note: %d weight(s) whose input width group size %d does not divide use the next divisor: %s\n",
			len(plan.refitted), s.GroupSize, strings.Join(plan.refitted, ", "))
	}
	if err := plan.run(env, src, eng, rep, q.Out); err != nil {
		return nil, err
	}
	return rep, nil
}

// planQuantized lays out the output file: every input tensor in order, a selected weight
// replaced by its .qweight/.scales/.zeros, with the per-tensor metadata. Shapes that the
// scheme cannot take (columns not dividing by the group size) fail here, before any work.
//
// pre, when not nil, holds weights already quantized by the calibrated path (by tensor
// name, each with its own scheme); a selected weight missing from it is kept.
func planQuantized(src checkpoint.Tensors, sel map[string]bool, s quant.Scheme, opt quant.SearchOptions, pre map[string]*quant.QTensor) (*quantPlan, error) {
	p := &quantPlan{scheme: s, opt: opt, selected: sel, pre: pre, schemes: map[string]quant.Scheme{}, meta: map[string]string{
		"format": "pt", quantfile.FormatKey: quantfile.FormatVersion,
		"autoq.scheme": s.String(), "autoq.search": opt.Method.String(),
	}}
	for _, n := range src.Names() {
		info, _ := src.Info(n)
		p.order = append(p.order, n)
		if !sel[n] {
			p.infos = append(p.infos, safetensors.TensorInfo{Name: n, DType: info.DType, Shape: info.Shape})
			continue
		}
		ts := s
		if pre != nil {
			q := pre[n]
			if q == nil {
				delete(sel, n)
				p.notLinear = append(p.notLinear, n)
				p.infos = append(p.infos, safetensors.TensorInfo{Name: n, DType: info.DType, Shape: info.Shape})
				continue
			}
			ts = q.Scheme
		}
		if pre == nil {
			// Real models have widths such as 172 (stories260K's MLP) that no power-of-two
			// group divides: quant.FitCols takes the next divisor (172/g32 -> g43), the rule
			// every autoq command shares. The report lists the refitted weights.
			if f := s.FitCols(info.Shape[1]); f != s {
				ts = f
				p.refitted = append(p.refitted, fmt.Sprintf("%s (%s)", n, f))
			}
			p.schemes[n] = ts
		}
		qi, err := quantfile.QuantizedInfos(n, info.Shape[0], info.Shape[1], ts)
		if err != nil {
			return nil, err
		}
		p.infos = append(p.infos, qi...)
		m := quantfile.NewQuantMeta(info.Shape[0], info.Shape[1], ts)
		m.Search, m.DType = opt.Method.String(), info.DType.String()
		if pre != nil && pre[n].GIdx != nil {
			p.infos = append(p.infos, quantfile.GIdxInfo(n, info.Shape[1]))
			m.GIdx = true
		}
		p.meta[quantfile.QuantMetaKey+n] = m.Encode()
		p.total += int64(info.Shape[0] * info.Shape[1])
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no weight to quantize: every selected weight is kept (%s)", strings.Join(p.notLinear, ", "))
	}
	return p, nil
}

// quantPlan is the work of one quantize run, laid out before it starts.
type quantPlan struct {
	scheme   quant.Scheme
	opt      quant.SearchOptions
	selected map[string]bool
	order    []string                 // input tensors in order
	infos    []safetensors.TensorInfo // output tensors in order
	meta     map[string]string
	total    int64 // weights to quantize
	// schemes is each weight's scheme (the requested one fitted to its width); refitted
	// lists the weights whose group size had to change ("name (w4g43)").
	schemes  map[string]quant.Scheme
	refitted []string
	// pre holds weights quantized ahead (calibrated path); notLinear lists selected weights
	// that are no linear layer of the model and so were kept.
	pre       map[string]*quant.QTensor
	notLinear []string
	// levels is the storage of the last quantized weight's levels, reused for the next
	// one (run writes each weight before quantizing the next).
	levels []byte
}

// run quantizes the selected weights one at a time (memory: one weight and its copies),
// fills rep, and when out is set writes the checkpoint directory atomically.
func (p *quantPlan) run(env Env, src *checkpoint.Opened, eng *engine, rep *QuantizeReport, out string) error {
	bar := progress.New(env.bars(), "quantize", p.total, "weights")
	start := time.Now()
	work := func(w *safetensors.Writer) error {
		for _, n := range p.order {
			if err := env.stopped(); err != nil {
				return err
			}
			if !p.selected[n] {
				size, err := keepTensor(w, src, n)
				if err != nil {
					return err
				}
				rep.Kept = append(rep.Kept, n)
				rep.BytesIn += size
				rep.BytesOut += size
				continue
			}
			t, err := src.Tensor(n)
			if err != nil {
				return err
			}
			rep.BytesIn += int64(len(t.Data))
			ra, closeRA := weightReader(src, n)
			ts, row, err := p.quantizeOne(eng.b, n, t, ra)
			closeRA()
			if err != nil {
				return err
			}
			rep.add(row)
			for _, qt := range ts {
				rep.BytesOut += int64(len(qt.T.Data))
				if w != nil {
					if err := w.WriteTensor(qt.Name, qt.T.Data); err != nil {
						return err
					}
				}
			}
			bar.Add(int64(t.NumElements()))
		}
		return nil
	}
	var err error
	if out == "" {
		err = work(nil)
	} else {
		err = atomicfile.Dir(out, quantfile.OutputKind, func(tmp string) error {
			w, err := safetensors.Create(filepath.Join(tmp, safetensors.SingleFileName), p.infos, p.meta)
			if err != nil {
				return err
			}
			if err := work(w); err != nil {
				w.Abort()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			if err := copySideFiles(src, tmp); err != nil {
				return err
			}
			if _, rotated := src.Tensors.(*rotate.Tensors); rotated && src.Dir != "" {
				return untieConfigFile(tmp) // the copied config.json still says tied
			}
			return nil
		})
	}
	bar.Done()
	rep.finish(time.Since(start))
	return err
}

// keepTensor copies tensor n unchanged into w (when not nil) and returns its size. From a
// safetensors checkpoint the kernel copies the bytes file to file (safetensors.CopyTensor),
// so kept tensors such as the embedding and lm_head neither pass through this process nor
// fault in pages of the mapped input.
func keepTensor(w *safetensors.Writer, src *checkpoint.Opened, n string) (int64, error) {
	if s, ok := src.Tensors.(interface {
		Section(string) (safetensors.Section, bool)
	}); ok {
		if sec, ok := s.Section(n); ok {
			if w == nil {
				return sec.Size, nil
			}
			return sec.Size, w.CopyTensor(n, sec)
		}
	}
	t, err := src.Tensor(n)
	if err != nil {
		return 0, err
	}
	if w != nil {
		err = w.WriteTensor(n, t.Data)
	}
	return int64(len(t.Data)), err
}

// weightReader returns a reader of tensor n's bytes in its safetensors file (nil when the
// source is not one) and a function that closes it.
func weightReader(src *checkpoint.Opened, n string) (io.ReaderAt, func()) {
	s, ok := src.Tensors.(interface {
		Section(string) (safetensors.Section, bool)
	})
	if !ok {
		return nil, func() {}
	}
	sec, ok := s.Section(n)
	if !ok {
		return nil, func() {}
	}
	f, err := os.Open(sec.Path)
	if err != nil { // the mapped tensor still works
		return nil, func() {}
	}
	return io.NewSectionReader(f, sec.Offset, sec.Size), func() { f.Close() }
}

// quantizeOne searches scales and quantizes one weight, and measures the reconstruction
// error against the original values without a float32 copy of either: on the CPU backend
// one pass over the weight does both (quant.QuantizeTensorWithError, or
// quant.QuantizeReaderWithError when ra reads the weight's bytes from its file: blocks of
// rows read into buffers cost less than faulting in the mapped file); otherwise
// quant.CompareTensor reads the weight again a row at a time.
func (p *quantPlan) quantizeOne(b backend.Backend, name string, t *tensor.Tensor, ra io.ReaderAt) ([]safetensors.NamedTensor, tensorRow, error) {
	var (
		q   *quant.QTensor
		e   quant.TensorError
		err error
	)
	if _, cpu := b.(backend.CPU); cpu && p.pre == nil {
		if ra != nil && len(t.Shape) == 2 && len(t.Data) == tensor.ByteSize(t.DType, t.Shape) {
			src := quant.TensorSource{R: ra, DType: t.DType, Rows: t.Shape[0], Cols: t.Shape[1], Levels: p.levels}
			q, e, err = quant.QuantizeReaderWithError(name, src, p.schemes[name], p.opt)
			if err == nil && cap(q.Data) > cap(p.levels) {
				p.levels = q.Data // reused for the next weight once this one is written
			}
		} else {
			q, e, err = quant.QuantizeTensorWithError(name, t, p.schemes[name], p.opt)
		}
	} else if q, err = p.quantizeWeight(b, name, t); err == nil {
		e, err = quant.CompareTensor(name, t, q)
	}
	if err != nil {
		return nil, tensorRow{}, err
	}
	ts, err := quantfile.QuantizedTensors(q)
	if err != nil {
		return nil, tensorRow{}, err
	}
	var stored int64
	for _, qt := range ts {
		stored += int64(len(qt.T.Data))
	}
	row := tensorRow{Name: name, Shape: t.Shape, Scheme: q.Scheme.String(), MSE: jf(e.MSE), SQNRdB: jf(e.SQNRdB),
		Cosine: jf(e.Cosine), MaxAbs: jf(e.MaxAbs), BitsPerWeight: float64(8*stored) / float64(e.Elements),
		elements: e.Elements, signal: e.Signal, noise: e.Noise, stored: stored}
	return ts, row, nil
}

// quantizeWeight returns the weight quantized ahead (calibrated path), or searches scales
// and quantizes it on the backend.
func (p *quantPlan) quantizeWeight(b backend.Backend, name string, t *tensor.Tensor) (*quant.QTensor, error) {
	if p.pre != nil {
		return p.pre[name], nil
	}
	s := p.schemes[name]
	scales, zeros, err := b.SearchParams(name, t, s, p.opt)
	if err != nil {
		return nil, err
	}
	return b.Quantize(name, t, s, scales, zeros)
}

// copySideFiles copies config.json and tokenizer files beside the source weights into dir;
// for the synthetic or llama2.c sources, it writes the config.json of their config.
func copySideFiles(src *checkpoint.Opened, dir string) error {
	if src.Dir != "" {
		return checkpoint.CopySideFiles(src.Dir, dir)
	}
	if src.Config == nil {
		return nil
	}
	cj, err := checkpoint.ConfigJSON(src.Config)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644)
}
