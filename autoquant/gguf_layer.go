package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// ggufType is the GGUF tensor type of a block format.
func ggufType(b quant.Block) gguf.Type {
	return map[quant.Block]gguf.Type{quant.BlockQ8_0: gguf.Q8_0, quant.BlockQ4_0: gguf.Q4_0, quant.BlockQ4_1: gguf.Q4_1,
		quant.BlockQ5_0: gguf.Q5_0, quant.BlockQ5_1: gguf.Q5_1, quant.BlockQ4_K: gguf.Q4_K, quant.BlockQ6_K: gguf.Q6_K}[b]
}

// quantizeBlock quantizes layer name to recipe c's llama.cpp block format:
//
//   - "+ref": llama.cpp's own quantizer (gguf.RefQuantize, no importance matrix: what
//     llama-quantize writes), the reference autoq is compared with.
//   - q8_0, q4_0, q4_1, q5_0, q5_1: autoq's own levels in the format's scheme (w8g32, w4g32,
//     ...) with F16 scales, chosen as for any recipe (round-to-nearest with the scale
//     search, or GPTQ), then stored (gguf.FromLevels).
//   - q4_k, q6_k: the grid first (gguf.ChooseGrid: llama.cpp's search, weighted by the
//     importance diag(H) when Hessians were collected), then the levels onto that fixed
//     grid: GPTQ (gptq.QuantizeOnGrid) or round-to-nearest.
//
// The model runs the dense weights the blocks decode to (llama.cpp's dequantization), so
// what is evaluated is what the file holds.
func (qz *Quantizers) quantizeBlock(m *model.Model, name string, c quant.Recipe, w []float32, rows, cols int) (*Layer, error) {
	t := ggufType(c.Block)
	if cols%c.Block.Size() != 0 {
		return nil, fmt.Errorf("quantize %s as %s: input width %d is not a multiple of %s's block size %d (keep the layer w16)", name, c, cols, c.Block, c.Block.Size())
	}
	h := qz.Hessians[name]
	useGPTQ := c.Rounding == quant.RoundGPTQ || c.Rounding == quant.RoundDefault && lowBit(c) && qz.LowBit != nil
	if c.Rounding == quant.RoundGPTQ && h == nil {
		return nil, fmt.Errorf("quantize %s as %s: GPTQ needs calibration data (the layer's input Hessian)", name, c)
	}
	var q *gguf.Quantized
	var err error
	switch {
	case c.Rounding == quant.RoundRef:
		q, err = gguf.RefQuantize(name, t, w, rows, cols, nil)
	case c.Block.KQuant():
		var imp []float32
		if h != nil {
			imp = hessianDiag(h)
		}
		var grid *gguf.Grid
		if grid, err = gguf.ChooseGrid(name, t, w, rows, cols, imp); err != nil {
			break
		}
		if !useGPTQ || h == nil {
			q, err = grid.RoundNearest(w)
			break
		}
		// (A Cholesky failure falls back to round-to-nearest on the grid, as GPTQ does.)
		levels, _, _, gerr := gptq.QuantizeOnGrid(name, w, rows, cols, cellGrid{grid}, h, BestGPTQ)
		if err = gerr; err == nil {
			q = &gguf.Quantized{Grid: *grid, Q: make([]int8, len(levels))}
			for i, l := range levels {
				q.Q[i] = int8(l)
			}
		}
	default:
		f16 := *qz
		f16.ScaleDType = tensor.F16 // a block stores F16 scales, whatever the model's dtype
		var l *Layer
		if l, err = f16.Quantize(m, name, quant.Recipe{Weight: c.Weight, Rounding: c.Rounding}); err != nil {
			return nil, err
		}
		var lv *gguf.Levels
		if lv, err = gguf.LevelsFromQTensor(l.Q); err == nil {
			q, err = gguf.FromLevels(t, lv)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("quantize %s as %s: %w", name, c, err)
	}
	deq, err := q.Dequantize()
	if err != nil {
		return nil, err
	}
	var bias []float32
	if b := m.Weight(name + ".bias"); b != nil {
		bias = b.F32()
	}
	d, err := model.NewDense(deq, bias, rows, cols)
	if err != nil {
		return nil, err
	}
	return &Layer{Name: name, Recipe: c, GGUF: q, Linear: d}, nil
}

// cellGrid rounds onto a gguf grid for gptq.QuantizeOnGrid.
type cellGrid struct{ g *gguf.Grid }

func (c cellGrid) Round(row, col int, x float32) (int32, float32) {
	cell := c.g.CellAt(row, col)
	q := cell.Nearest(x)
	return q, cell.Value(q)
}

// hessianDiag is diag(H): each input's mean square, llama.cpp's importance matrix.
func hessianDiag(h *gptq.Hessian) []float32 {
	hm := h.Matrix()
	out := make([]float32, h.K)
	for i := range out {
		out[i] = float32(hm[i*h.K+i])
	}
	return out
}
