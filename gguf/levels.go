package gguf

import (
	"fmt"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Levels is a matrix quantized to integer levels with one scale (and, asymmetric, one
// integer zero point) per group of GroupSize consecutive inputs of a row: autoq's
// quant.QTensor unpacked, for any bit width (autoq's quant has 4 and 8 bits; 5-bit levels
// come from the same struct). Level q of a group with scale s and zero z stands for
// float32(q-z)*s, quant.DequantizeValue.
type Levels struct {
	Name       string
	Rows, Cols int
	Bits       int
	Symmetric  bool
	GroupSize  int
	Q          []int32   // row-major; symmetric [-2^(b-1), 2^(b-1)-1], asymmetric [0, 2^b-1]
	Scales     []float32 // [Rows, Cols/GroupSize]
	Zeros      []int32   // asymmetric only, same shape; nil when symmetric
}

// LevelsFromQTensor unpacks an autoq QTensor. Only per-group schemes map to GGUF blocks;
// PerChannel/PerTensor tensors are refused (their scale is not per block of 32).
func LevelsFromQTensor(q *quant.QTensor) (*Levels, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Scheme.Granularity != quant.PerGroup {
		return nil, fmt.Errorf("gguf: tensor %q: scheme %s is not per group; GGUF block formats need one scale per block of 32 inputs", q.Name, q.Scheme)
	}
	if q.GIdx != nil {
		return nil, fmt.Errorf("gguf: tensor %q: groups in activation order (g_idx) have no GGUF block format (contiguous groups only: GPTQ --act-order-groups static)", q.Name)
	}
	return &Levels{Name: q.Name, Rows: q.Rows, Cols: q.Cols, Bits: q.Scheme.Bits, Symmetric: q.Scheme.Symmetric,
		GroupSize: q.Scheme.GroupSize, Q: q.Levels(), Scales: append([]float32(nil), q.Scales...), Zeros: append([]int32(nil), q.Zeros...)}, nil
}

// LegacyType is the block format that stores b-bit levels in groups of 32 exactly:
// 8-bit symmetric Q8_0, 4-bit symmetric Q4_0, 4-bit asymmetric Q4_1, 5-bit symmetric Q5_0,
// 5-bit asymmetric Q5_1.
func LegacyType(bits int, symmetric bool) (Type, error) {
	switch {
	case bits == 8 && symmetric:
		return Q8_0, nil
	case bits == 4 && symmetric:
		return Q4_0, nil
	case bits == 4:
		return Q4_1, nil
	case bits == 5 && symmetric:
		return Q5_0, nil
	case bits == 5:
		return Q5_1, nil
	}
	sym := "asymmetric"
	if symmetric {
		sym = "symmetric"
	}
	return 0, fmt.Errorf("gguf: no GGUF block format stores %d-bit %s levels in groups of 32 (Q8_0: 8 sym, Q4_0/Q4_1: 4 sym/asym, Q5_0/Q5_1: 5 sym/asym; use the k-quant grids for other widths)", bits, sym)
}

// RoundScales rounds autoq's float32 group scales to what a Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 block
// stores: the nearest F16 value (ties to even, as ggml's GGML_FP32_TO_FP16). Call it
// BEFORE choosing levels (quant.QuantizeWithParams, GPTQ) so that the levels are chosen for,
// and autoq evaluates, exactly the stored scale: symmetric levels then decode bit for bit
// to quant.Dequantize's values. A scale that rounds to 0 or overflows F16 is an error
// naming the tensor and the scale.
//
// Asymmetric levels (Q4_1, Q5_1) store a min m instead of a zero point: FromLevels sets
// m = F16(-z*d) with d the rounded scale. Since z*d is exact in float32 and q*d too, the
// decoded value fl(q*d + m) differs from autoq's (q-z)*d by at most
// ½·ulp_F16(z·d) + ½·ulp_F32(result) — about 2^-11·z·d, under 1% of a step for z <= 15.
// For bit-exact asymmetric weights, choose the levels on the block's own grid instead
// (GridFromParams, then Grid.RoundNearest or Cell.Nearest per weight).
func RoundScales(name string, scales []float32) ([]float32, error) {
	out, err := quant.RoundScalesF16(name, scales)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return out, nil
}

// GridFromParams builds the exact grid of a legacy block format from autoq's per-group
// (groups of 32) scales and zero points ([rows, cols/32]; zeros nil for Q8_0/Q4_0/Q5_0):
// d = F16(scale), and for Q4_1/Q5_1 m = F16(-zero*d). Round weights onto it with
// Grid.RoundNearest, or one at a time with CellAt(row, col).Nearest.
func GridFromParams(name string, t Type, rows, cols int, scales []float32, zeros []int32) (*Grid, error) {
	g, err := NewGrid(name, t, rows, cols)
	if err != nil {
		return nil, err
	}
	if t == Q4_K || t == Q6_K {
		return nil, fmt.Errorf("gguf: tensor %q: %s grids come from ChooseGrid, not from per-group scales", name, t)
	}
	if len(scales) != len(g.D) {
		return nil, fmt.Errorf("gguf: tensor %q: %d scales for %dx%d in groups of 32 (want %d)", name, len(scales), rows, cols, len(g.D))
	}
	asym := t == Q4_1 || t == Q5_1
	if asym != (zeros != nil) || (asym && len(zeros) != len(scales)) {
		return nil, fmt.Errorf("gguf: tensor %q: %s needs %s zero points, got %d", name, t, map[bool]string{true: "one per group of", false: "no"}[asym], len(zeros))
	}
	rounded, err := RoundScales(name, scales)
	if err != nil {
		return nil, err
	}
	_, hi := codeRange(t)
	for i, d := range rounded {
		g.D[i] = tensor.F32ToF16(d)
		if asym {
			if zeros[i] < 0 || zeros[i] > hi {
				return nil, fmt.Errorf("gguf: tensor %q: zero point %d of group %d outside [0, %d]", name, zeros[i], i, hi)
			}
			m := float32(-zeros[i]) * d
			g.M[i] = tensor.F32ToF16(m)
			if v := tensor.F16ToF32(g.M[i]); v-v != 0 {
				return nil, fmt.Errorf("gguf: tensor %q: group %d: min %v overflows F16", name, i, m)
			}
		}
	}
	return g, nil
}

// FromLevels stores autoq's levels in block format t (Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1;
// LegacyType says which fits). The levels' bits, symmetry and group size (32) must match
// t, and every scale must already be an F16 value (RoundScales before the levels were
// chosen), otherwise the stored weights would differ from the ones the levels were chosen
// for: that is an error naming the tensor, row and group. Codes: Q8_0 stores q; Q4_0 q+8;
// Q5_0 q+16; Q4_1 and Q5_1 q itself, with m = F16(-zero*d) (see RoundScales for the bound).
func FromLevels(t Type, l *Levels) (*Quantized, error) {
	want, err := LegacyType(l.Bits, l.Symmetric)
	if err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: %w", l.Name, err)
	}
	if want != t {
		return nil, fmt.Errorf("gguf: tensor %q: %d-bit levels (symmetric %v) are stored as %s, not %s", l.Name, l.Bits, l.Symmetric, want, t)
	}
	if l.GroupSize != QK {
		return nil, fmt.Errorf("gguf: tensor %q: group size %d; %s blocks hold groups of %d", l.Name, l.GroupSize, t, QK)
	}
	if len(l.Q) != l.Rows*l.Cols {
		return nil, fmt.Errorf("gguf: tensor %q: %d levels for %dx%d", l.Name, len(l.Q), l.Rows, l.Cols)
	}
	groups := l.Cols / QK
	for i, s := range l.Scales {
		if tensor.F16ToF32(tensor.F32ToF16(s)) != s {
			return nil, fmt.Errorf("gguf: tensor %q: row %d, group %d: scale %v is not an F16 value; round the scales with RoundScales before choosing the levels", l.Name, i/max(groups, 1), i%max(groups, 1), s)
		}
	}
	var zeros []int32
	if !l.Symmetric {
		zeros = l.Zeros
	}
	g, err := GridFromParams(l.Name, t, l.Rows, l.Cols, l.Scales, zeros)
	if err != nil {
		return nil, err
	}
	lo, hi := int32(-1)<<(l.Bits-1), int32(1)<<(l.Bits-1)-1
	offset := int32(0)
	if l.Symmetric && t != Q8_0 {
		offset = 1 << (l.Bits - 1)
	}
	if !l.Symmetric {
		lo, hi = 0, int32(1)<<l.Bits-1
	}
	q := &Quantized{Grid: *g, Q: make([]int8, len(l.Q))}
	for i, v := range l.Q {
		if v < lo || v > hi {
			return nil, fmt.Errorf("gguf: tensor %q: level %d at row %d, col %d outside [%d, %d]", l.Name, v, i/l.Cols, i%l.Cols, lo, hi)
		}
		q.Q[i] = int8(v + offset)
	}
	return q, nil
}

// ChooseGrid chooses the grid of every row the way llama.cpp's quantizer would (see
// RefQuantize), weighted by per-column importance when given (nil: llama.cpp's unweighted
// reference). For the k-quants this is "choose the grid first": F16 d/dmin and 6-bit
// sub-block scales and mins (Q4_K), F16 d and int8 sub-block scales (Q6_K). The grid is
// then fixed: CellAt(row, col) gives each weight's scale, offset and level range for
// an algorithm that rounds one column at a time (GPTQ's error compensation, an
// activation-aware search), Grid.RoundNearest the plain round-to-nearest, and
// Quantized.Encode the blocks.
func ChooseGrid(name string, t Type, w []float32, rows, cols int, importance []float32) (*Grid, error) {
	q, err := RefQuantize(name, t, w, rows, cols, importance)
	if err != nil {
		return nil, err
	}
	return &q.Grid, nil
}
