package collect

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// Mode says which inputs a layer's Hessian is taken from.
type Mode uint8

const (
	// OneShot: every layer's Hessian from the full-precision model (Hessians, QuantizeModel).
	OneShot Mode = iota
	// ByBlock: the layers of block b see the output of blocks 0..b-1 already quantized;
	// inside block b the full-precision layers run (llm-compressor's sequential pipeline).
	// Per block: one calibration pass, then one pass of the quantized block to produce
	// the next block's input: about two forward passes of the data in all.
	ByBlock
	// ByLayer: as ByBlock, and inside a block each group of layers sharing an input (q/k/v,
	// o, gate/up, down) sees the groups before it already quantized (GPTQ's "true
	// sequential"). Each group's pass runs the block only as far as that group's input
	// (model.ProbeBlock): about three forward passes of the data in all.
	ByLayer
)

var modeNames = []string{OneShot: "off", ByBlock: "block", ByLayer: "layer"}

// ParseMode accepts "off" (or "none", or ""), "block" and "layer".
func ParseMode(s string) (Mode, error) {
	if s == "none" || s == "" {
		return OneShot, nil
	}
	return quant.ParseEnum[Mode](s, modeNames, "sequential mode", "off, block or layer")
}

func (m Mode) String() string { return quant.EnumName("Mode", m, modeNames) }

// inputGroups splits the linear layers (in forward order) into runs that read the same
// input: q/k/v, o, gate/up, down of each decoder layer.
func inputGroups(names []string) [][]string {
	var out [][]string
	for _, n := range names {
		shares := strings.HasSuffix(n, "k_proj") || strings.HasSuffix(n, "v_proj") || strings.HasSuffix(n, "up_proj")
		if shares && len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], n)
			continue
		}
		out = append(out, []string{n})
	}
	return out
}

// Options configures SequentialWith.
type Options struct {
	Mode  Mode // ByBlock or ByLayer
	Batch int  // sequences per forward pass (0: 1)
	// FPTarget keeps a second, full-precision stream of states next to the quantized one
	// and gives each layer the target weights whose output on its quantized-path inputs
	// best matches the full-precision layer on the full-precision inputs (gptq.FPTarget,
	// GPTAQ's asymmetric calibration): later layers then compensate the error of earlier
	// ones instead of only reproducing the full-precision layer on drifted inputs. Memory:
	// twice the boundary states; cost: about two more block passes per block.
	FPTarget bool
	// Progress, if not nil, is called after each block with (blocks done, blocks).
	Progress func(done, total int)
}

// LayerInput is what a layer is quantized against.
type LayerInput struct {
	H *gptq.Hessian // second moment of the layer's input on the quantized path
	// Target is the weight to quantize ([rows, cols]): the checkpoint's, or with
	// Options.FPTarget the drift-corrected gptq.FPTarget.
	Target []float32
}

// LayerFunc quantizes the linear layer name against in and returns the layer to plug into
// the model in its place (whose output the later layers' inputs are computed from).
type LayerFunc func(name string, in LayerInput) (model.Linear, error)

// SequentialWith quantizes m's linear layers block by block (mode ByBlock or ByLayer), each
// against the Hessian of its input as the already-quantized layers before it produce it, and
// plugs every result into m. It starts from the full-precision model (m.ResetLinears: any
// layer plugged before is replaced). The residual stream of each batch of sequences is kept
// at the current block boundary (memory: calibration tokens x dim float32; twice that with
// FPTarget), so the blocks before are never run again.
func SequentialWith(m *model.Model, seqs [][]int, opt Options, quantize LayerFunc) error {
	if opt.Mode != ByBlock && opt.Mode != ByLayer {
		return fmt.Errorf("sequential: mode %v is not block or layer", opt.Mode)
	}
	if len(seqs) == 0 {
		return fmt.Errorf("collect: no calibration sequences")
	}
	batch := max(opt.Batch, 1)
	m.ResetLinears()
	var states, refs []*model.Hidden // quantized path; full-precision path (FPTarget)
	for b0 := 0; b0 < len(seqs); b0 += batch {
		h, err := m.Embed(seqs[b0:min(b0+batch, len(seqs))])
		if err != nil {
			return fmt.Errorf("collect: calibration batch %d: %w", b0/batch, err)
		}
		states = append(states, h)
		if opt.FPTarget {
			refs = append(refs, h.Clone())
		}
	}
	for b := 0; b < m.Blocks(); b++ {
		names := m.BlockLinearNames(b)
		fp := map[string]model.Linear{} // block b's layers before quantization
		for _, n := range names {
			fp[n] = m.Linear(n)
		}
		groups := inputGroups(names)
		if opt.Mode == ByBlock {
			groups = [][]string{names}
		}
		for _, grp := range groups {
			st, err := blockStats(m, states, refs, fp, b, grp)
			if err != nil {
				return err
			}
			for _, name := range grp {
				in := LayerInput{H: st.h[name], Target: m.Weight(name + ".weight").ToF32()}
				if opt.FPTarget {
					w := m.Weight(name + ".weight")
					if in.Target, err = gptq.FPTarget(name, in.Target, w.Shape[0], w.Shape[1], in.H, st.d[name], 0); err != nil {
						return fmt.Errorf("sequential: %w", err)
					}
				}
				l, err := quantize(name, in)
				if err != nil {
					return fmt.Errorf("sequential: %w", err)
				}
				if err := m.SetLinear(name, l); err != nil {
					return err
				}
			}
		}
		if err := withLinears(m, fp, func() error { return runAll(m, refs, b) }); err != nil {
			return err
		}
		if err := runAll(m, states, b); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(b+1, m.Blocks())
		}
	}
	return nil
}

// runAll advances every state through block b in place.
func runAll(m *model.Model, states []*model.Hidden, b int) error {
	for _, h := range states {
		if err := m.RunBlocks(h, b, b+1, nil); err != nil {
			return err
		}
	}
	return nil
}

// withLinears runs f with the layers of set plugged in, then plugs back what was there.
func withLinears(m *model.Model, set map[string]model.Linear, f func() error) error {
	saved := map[string]model.Linear{}
	for n, l := range set {
		saved[n] = m.Linear(n)
		if err := m.SetLinear(n, l); err != nil {
			return err
		}
	}
	err := f()
	for n, l := range saved {
		if e := m.SetLinear(n, l); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// stats are the statistics of one group of layers: Hessians and, with a full-precision
// stream, drifts.
type stats struct {
	h map[string]*gptq.Hessian
	d map[string]*gptq.Drift
}

// blockStats runs block b on every stored state as far as the last layer of names and
// returns the Hessian of each named layer's input. Layers sharing an input (q/k/v,
// gate/up) share its accumulation and get separate copies. With refs (the full-precision
// states of the same batches), each batch first runs through block b's full-precision
// layers fp to record the reference inputs, and the drifts are accumulated too.
func blockStats(m *model.Model, states, refs []*model.Hidden, fp map[string]model.Linear, b int, names []string) (*stats, error) {
	owner := map[string]string{} // layer -> first layer of its input group
	for _, grp := range inputGroups(names) {
		for _, n := range grp {
			owner[n] = grp[0]
		}
	}
	hs := map[string]*gptq.Hessian{}
	ds := map[string]*gptq.Drift{}
	refIn := map[string][]float32{} // this batch's reference input per owner
	var hookErr error
	record := func(name string, x []float32, M, K int) {
		if owner[name] == name {
			refIn[name] = append(refIn[name][:0], x...)
		}
	}
	hook := func(name string, x []float32, M, K int) {
		if hookErr != nil || owner[name] != name {
			return
		}
		if hs[name] == nil {
			h, err := gptq.NewHessian(K)
			if err != nil {
				hookErr = fmt.Errorf("collect: %s: %w", name, err)
				return
			}
			hs[name] = h
			if refs != nil {
				ds[name], _ = gptq.NewDrift(K)
			}
		}
		if err := hs[name].Add(x, M, K); err != nil {
			hookErr = fmt.Errorf("collect: %s: %w", name, err)
			return
		}
		if refs != nil {
			if err := ds[name].Add(refIn[name], x, M, K); err != nil {
				hookErr = fmt.Errorf("collect: %s: %w", name, err)
			}
		}
	}
	last := owner[names[len(names)-1]]
	for i, h := range states {
		if refs != nil {
			err := withLinears(m, fp, func() error { return m.ProbeBlock(refs[i], b, last, record) })
			if err != nil {
				return nil, fmt.Errorf("collect: calibration batch %d: %w", i, err)
			}
		}
		if err := m.ProbeBlock(h, b, last, hook); err != nil {
			return nil, fmt.Errorf("collect: calibration batch %d: %w", i, err)
		}
		if hookErr != nil {
			return nil, hookErr
		}
	}
	out := &stats{h: map[string]*gptq.Hessian{}, d: map[string]*gptq.Drift{}}
	for _, n := range names {
		src := hs[owner[n]]
		if src == nil {
			return nil, fmt.Errorf("collect: linear layer %s saw no input during calibration", n)
		}
		out.h[n] = &gptq.Hessian{K: src.K, Tokens: src.Tokens, Sum: append([]float64(nil), src.Sum...)}
		if d := ds[owner[n]]; d != nil {
			out.d[n] = d // read only: shared by the layers of one input
		}
	}
	return out, nil
}

// Sequential quantizes m's linear layers with method, clip, scheme s (fitted per layer) and
// gopt in sequential mode (see Options and SequentialWith), plugging weight-only
// fake-quantized layers. It returns the quantized tensors by layer name and, for GPTQ, one
// report per layer in LinearNames order. On return the model has every quantized layer
// plugged in (m.ResetLinears restores full precision).
func Sequential(m *model.Model, seqs [][]int, opt Options, method Method, clip gptq.Clip, s quant.Scheme, gopt gptq.Options) (map[string]*quant.QTensor, []gptq.Report, error) {
	qs := make(map[string]*quant.QTensor)
	var reps []gptq.Report
	err := SequentialWith(m, seqs, opt, func(name string, in LayerInput) (model.Linear, error) {
		q, rep, err := quantizeWeights(m, name, in.Target, in.H, method, clip, s, gopt)
		if err != nil {
			return nil, err
		}
		if method == GPTQ {
			reps = append(reps, rep)
		}
		qs[name] = q
		return fakeQuant(m, name, q)
	})
	if err != nil {
		return nil, nil, err
	}
	return qs, reps, nil
}
