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

// ParseMode accepts "off" (or "none"), "block" and "layer".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "off", "none", "":
		return OneShot, nil
	case "block":
		return ByBlock, nil
	case "layer":
		return ByLayer, nil
	}
	return 0, fmt.Errorf("unknown sequential mode %q (want off, block or layer)", s)
}

func (m Mode) String() string {
	switch m {
	case OneShot:
		return "off"
	case ByBlock:
		return "block"
	case ByLayer:
		return "layer"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

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

// LayerFunc quantizes the linear layer name against the second moment h of its input and
// returns the layer to plug into the model in its place (whose output the later layers'
// inputs are computed from).
type LayerFunc func(name string, h *gptq.Hessian) (model.Linear, error)

// SequentialWith quantizes m's linear layers block by block (mode ByBlock or ByLayer), each
// against the Hessian of its input as the already-quantized layers before it produce it, and
// plugs every result into m. The residual stream of each batch of batch sequences is kept
// at the current block boundary (memory: calibration tokens x dim float32), so the blocks
// before are never run again. progress, if not nil, is called after each block.
func SequentialWith(m *model.Model, seqs [][]int, batch int, mode Mode, quantize LayerFunc, progress func(done, total int)) error {
	if mode != ByBlock && mode != ByLayer {
		return fmt.Errorf("sequential: mode %v is not block or layer", mode)
	}
	if len(seqs) == 0 {
		return fmt.Errorf("collect: no calibration sequences")
	}
	if batch <= 0 {
		batch = 1
	}
	var states []*model.Hidden
	for b0 := 0; b0 < len(seqs); b0 += batch {
		h, err := m.Embed(seqs[b0:min(b0+batch, len(seqs))])
		if err != nil {
			return fmt.Errorf("collect: calibration batch %d: %w", b0/batch, err)
		}
		states = append(states, h)
	}
	for b := 0; b < m.Blocks(); b++ {
		groups := inputGroups(m.BlockLinearNames(b))
		if mode == ByBlock {
			groups = [][]string{m.BlockLinearNames(b)}
		}
		for _, grp := range groups {
			hs, err := blockHessians(m, states, b, grp)
			if err != nil {
				return err
			}
			for _, name := range grp {
				l, err := quantize(name, hs[name])
				if err != nil {
					return fmt.Errorf("sequential: %w", err)
				}
				if err := m.SetLinear(name, l); err != nil {
					return err
				}
			}
		}
		for _, h := range states {
			if err := m.RunBlocks(h, b, b+1, nil); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(b+1, m.Blocks())
		}
	}
	return nil
}

// blockHessians runs block b on every stored state as far as the last layer of names and
// returns the Hessian of each named layer's input. Layers sharing an input (q/k/v,
// gate/up) share its accumulation and get separate copies.
func blockHessians(m *model.Model, states []*model.Hidden, b int, names []string) (map[string]*gptq.Hessian, error) {
	owner := map[string]string{} // layer -> first layer of its input group
	for _, grp := range inputGroups(names) {
		for _, n := range grp {
			owner[n] = grp[0]
		}
	}
	acc := map[string]*gptq.Hessian{}
	var hookErr error
	hook := func(name string, x []float32, M, K int) {
		if hookErr != nil || owner[name] != name {
			return
		}
		h := acc[name]
		if h == nil {
			var err error
			if h, err = gptq.NewHessian(K); err != nil {
				hookErr = fmt.Errorf("collect: %s: %w", name, err)
				return
			}
			acc[name] = h
		}
		if err := h.Add(x, M, K); err != nil {
			hookErr = fmt.Errorf("collect: %s: %w", name, err)
		}
	}
	last := owner[names[len(names)-1]]
	for i, h := range states {
		if err := m.ProbeBlock(h, b, last, hook); err != nil {
			return nil, fmt.Errorf("collect: calibration batch %d: %w", i, err)
		}
		if hookErr != nil {
			return nil, hookErr
		}
	}
	out := make(map[string]*gptq.Hessian, len(names))
	for _, n := range names {
		src := acc[owner[n]]
		if src == nil {
			return nil, fmt.Errorf("collect: linear layer %s saw no input during calibration", n)
		}
		out[n] = &gptq.Hessian{K: src.K, Tokens: src.Tokens, Sum: append([]float64(nil), src.Sum...)}
	}
	return out, nil
}

// Sequential quantizes m's linear layers with method, clip, scheme s (fitted per layer) and
// opt in sequential mode (see Mode and SequentialWith), plugging weight-only fake-quantized
// layers. It returns the quantized tensors by layer name and, for GPTQ, one report per layer
// in LinearNames order. On return the model has every quantized layer plugged in
// (m.ResetLinears restores full precision).
func Sequential(m *model.Model, seqs [][]int, batch int, mode Mode, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options, progress func(done, total int)) (map[string]*quant.QTensor, []gptq.Report, error) {
	qs := make(map[string]*quant.QTensor)
	var reps []gptq.Report
	err := SequentialWith(m, seqs, batch, mode, func(name string, h *gptq.Hessian) (model.Linear, error) {
		q, rep, err := quantizeLayer(m, name, h, method, clip, s, opt)
		if err != nil {
			return nil, err
		}
		if method == GPTQ {
			reps = append(reps, rep)
		}
		qs[name] = q
		return fakeQuant(m, name, q)
	}, progress)
	if err != nil {
		return nil, nil, err
	}
	return qs, reps, nil
}
