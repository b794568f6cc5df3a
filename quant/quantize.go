package quant

import (
	"fmt"
	"slices"

	"github.com/autoq/autoq/tensor"
)

// Quantize chooses parameters with SearchParams and applies them with QuantizeWithParams.
func Quantize(name string, w []float32, rows, cols int, s Scheme, opt SearchOptions) (*QTensor, error) {
	scales, zeros, err := SearchParams(name, w, rows, cols, s, opt)
	if err != nil {
		return nil, err
	}
	return QuantizeWithParams(name, w, rows, cols, s, scales, zeros)
}

// QuantizeWithParams quantizes the rows x cols matrix w with the given scales (and zero
// points when asymmetric; nil or all zero when symmetric), laid out [rows, groups] (one
// entry for PerTensor). Each element becomes s.QuantizeValue(x, scale, zero): a float32
// division, round half to even, then saturation to QRange. NaN/Inf in w, bad shapes, and
// non-finite or non-positive scales or out-of-range zero points are errors.
func QuantizeWithParams(name string, w []float32, rows, cols int, s Scheme, scales []float32, zeros []int32) (*QTensor, error) {
	if _, err := checkLayout(name, len(w), rows, cols, s); err != nil {
		return nil, err
	}
	return quantizeMatrix(name, matrix{rows: rows, cols: cols, dtype: tensor.F32, f32: w}, s, scales, zeros)
}

// NewQTensor packs already-computed integer levels (row-major, rows x cols, each within
// s.QRange()) into a QTensor with the given scales and zero points (as QuantizeWithParams).
// GPTQ, which chooses levels itself, builds its result this way.
func NewQTensor(name string, s Scheme, rows, cols int, levels []int32, scales []float32, zeros []int32) (*QTensor, error) {
	l, err := checkLayout(name, len(levels), rows, cols, s)
	if err != nil {
		return nil, err
	}
	if err := checkParams(name, l, s, scales, zeros); err != nil {
		return nil, err
	}
	q := newQTensor(name, s, l, scales, zeros)
	qlo, qhi := s.QRange()
	rb := q.rowBytes()
	for r := 0; r < rows; r++ {
		dst := q.Data[r*rb : (r+1)*rb]
		for c, v := range levels[r*cols : (r+1)*cols] {
			if v < qlo || v > qhi {
				return nil, fmt.Errorf("quant: tensor %q: level %d at row %d, col %d outside [%d, %d]", name, v, r, c, qlo, qhi)
			}
			putLevel(dst, s.Bits, c, v)
		}
	}
	return q, nil
}

// newQTensor allocates the storage; scales and zeros are copied (zeros dropped when
// symmetric).
func newQTensor(name string, s Scheme, l Layout, scales []float32, zeros []int32) *QTensor {
	return newQTensorIn(name, s, l, scales, zeros, nil)
}

// newQTensorIn is newQTensor with the levels stored in buf, cleared, when it is large
// enough.
func newQTensorIn(name string, s Scheme, l Layout, scales []float32, zeros []int32, buf []byte) *QTensor {
	q := &QTensor{Name: name, Scheme: s, Rows: l.Rows, Cols: l.Cols, Groups: l.Groups, Scales: slices.Clone(scales)}
	if !s.Symmetric {
		q.Zeros = slices.Clone(zeros)
	}
	if n := l.Rows * q.rowBytes(); cap(buf) >= n {
		q.Data = buf[:n]
		clear(q.Data)
	} else {
		q.Data = make([]byte, n)
	}
	return q
}

func (q *QTensor) zeroAt(i int) int32 {
	if q.Zeros == nil {
		return 0
	}
	return q.Zeros[i]
}

// Layout is the group layout of q's parameters.
func (q *QTensor) Layout() Layout {
	l := Layout{Rows: q.Rows, Cols: q.Cols, GroupSize: q.Cols, Groups: 1, PerTensor: q.Scheme.Granularity == PerTensor}
	if q.Scheme.Granularity == PerGroup {
		l.GroupSize, l.Groups = q.Scheme.GroupSize, q.Groups
	}
	return l
}

// Validate checks that q is internally consistent (scheme, Groups, Data length, scales and
// zero points), so that Levels, ScaleAt, Dequantize and the GEMMs can trust it.
func (q *QTensor) Validate() error {
	if q == nil {
		return fmt.Errorf("quant: nil QTensor")
	}
	l, err := checkLayout(q.Name, q.Rows*q.Cols, q.Rows, q.Cols, q.Scheme)
	if err != nil {
		return err
	}
	if q.Groups != l.Groups {
		return fmt.Errorf("quant: tensor %q: Groups is %d, scheme %s with %d columns needs %d", q.Name, q.Groups, q.Scheme, q.Cols, l.Groups)
	}
	if want := q.Rows * q.rowBytes(); len(q.Data) != want {
		return fmt.Errorf("quant: tensor %q: %d data bytes for %dx%d %s (want %d)", q.Name, len(q.Data), q.Rows, q.Cols, q.Scheme, want)
	}
	if err := checkParams(q.Name, l, q.Scheme, q.Scales, q.Zeros); err != nil {
		return err
	}
	return checkGIdx(q.Name, l, q.Scheme, q.GIdx)
}

// checkGIdx checks a column-to-group map: PerGroup only, one entry per column, every group
// holding GroupSize columns.
func checkGIdx(name string, l Layout, s Scheme, gidx []int32) error {
	if gidx == nil {
		return nil
	}
	if s.Granularity != PerGroup {
		return fmt.Errorf("quant: tensor %q: a group index (g_idx) needs group granularity, not %s", name, s.Granularity)
	}
	if len(gidx) != l.Cols {
		return fmt.Errorf("quant: tensor %q: group index has %d entries for %d columns", name, len(gidx), l.Cols)
	}
	count := make([]int, l.Groups)
	for c, g := range gidx {
		if g < 0 || int(g) >= l.Groups {
			return fmt.Errorf("quant: tensor %q: column %d is in group %d, outside [0, %d)", name, c, g, l.Groups)
		}
		count[g]++
	}
	for g, n := range count {
		if n != l.GroupSize {
			return fmt.Errorf("quant: tensor %q: group %d has %d columns in the group index, want %d", name, g, n, l.GroupSize)
		}
	}
	return nil
}

// param is the index into Scales/Zeros of element (r, c), GIdx included.
func (q *QTensor) param(l Layout, r, c int) int {
	if q.GIdx != nil {
		return r*l.Groups + int(q.GIdx[c])
	}
	return l.Param(r, c)
}

// Levels returns the unpacked integer levels, row-major (nil if q is invalid).
func (q *QTensor) Levels() []int32 {
	if q.Validate() != nil {
		return nil
	}
	out := make([]int32, q.Rows*q.Cols)
	rb := q.rowBytes()
	_ = parallelRows(q.Rows, func(r0, r1 int) error {
		for r := r0; r < r1; r++ {
			row := q.Data[r*rb : (r+1)*rb]
			for c := 0; c < q.Cols; c++ {
				out[r*q.Cols+c] = getLevel(row, q.Scheme.Bits, q.Scheme.Symmetric, c)
			}
		}
		return nil
	})
	return out
}

// ScaleAt returns the scale and zero point that element (row, col) uses; (0, 0) when the
// element is outside the matrix.
func (q *QTensor) ScaleAt(row, col int) (scale float32, zero int32) {
	if row < 0 || row >= q.Rows || col < 0 || col >= q.Cols {
		return 0, 0
	}
	if q.GIdx != nil && len(q.GIdx) != q.Cols {
		return 0, 0
	}
	i := q.param(q.Layout(), row, col)
	if i < 0 || i >= len(q.Scales) {
		return 0, 0
	}
	if q.Zeros != nil && i < len(q.Zeros) {
		zero = q.Zeros[i]
	}
	return q.Scales[i], zero
}

// Dequantize returns the float32 values q stands for, row-major: DequantizeValue(level,
// scale, zero) = float32(level-zero)*scale per element. It returns nil if q is invalid
// (see Validate).
func Dequantize(q *QTensor) []float32 {
	if q.Validate() != nil {
		return nil
	}
	out := make([]float32, q.Rows*q.Cols)
	dequantizeRows(q, out, 0, q.Rows)
	return out
}

// DequantizeRowsInto writes rows [r0, r1) of q (validated) dequantized into dst (at least
// (r1-r0)*Cols long) and returns them: Dequantize's values of those rows, so that a layer
// can keep q and dequantize its rows where it uses them. It runs on the calling goroutine.
func DequantizeRowsInto(q *QTensor, dst []float32, r0, r1 int) []float32 {
	l := q.Layout()
	rb := q.rowBytes()
	dst = dst[:(r1-r0)*q.Cols]
	for r := r0; r < r1; r++ {
		dequantizeRow(q, l, q.Data[r*rb:(r+1)*rb], r, dst[(r-r0)*q.Cols:(r-r0+1)*q.Cols])
	}
	return dst
}

// dequantizeRows fills out (the full matrix) for rows [r0, r1), in parallel.
func dequantizeRows(q *QTensor, out []float32, r0, r1 int) {
	l := q.Layout()
	rb := q.rowBytes()
	_ = parallelRows(r1-r0, func(a, b int) error {
		for r := r0 + a; r < r0+b; r++ {
			dequantizeRow(q, l, q.Data[r*rb:(r+1)*rb], r, out[r*q.Cols:(r+1)*q.Cols])
		}
		return nil
	})
}

// dequantizeRow writes row r of q into dst, one scale group at a time. 8- and 4-bit
// levels have loops of their own; the other widths go through dequantizeStream.
func dequantizeRow(q *QTensor, l Layout, packed []byte, r int, dst []float32) {
	sym := q.Scheme.Symmetric
	if q.GIdx != nil { // groups in activation order: element by element
		for c := range dst {
			i := q.param(l, r, c)
			dst[c] = DequantizeValue(getLevel(packed, q.Scheme.Bits, sym, c), q.Scales[i], q.zeroAt(i))
		}
		return
	}
	for g := 0; g < l.Groups; g++ {
		i := l.Param(r, g*l.GroupSize)
		sc, z := q.Scales[i], q.zeroAt(i)
		c0 := g * l.GroupSize
		seg := dst[c0 : c0+l.GroupSize]
		switch {
		case q.Scheme.Bits == 8 && sym:
			src := packed[c0 : c0+len(seg)]
			for j := range seg {
				seg[j] = DequantizeValue(int32(int8(src[j])), sc, z)
			}
		case q.Scheme.Bits == 8:
			src := packed[c0 : c0+len(seg)]
			for j := range seg {
				seg[j] = DequantizeValue(int32(src[j]), sc, z)
			}
		case q.Scheme.Bits != 4:
			dequantizeStream(packed, q.Scheme.Bits, sym, c0, seg, sc, z)
		case c0%2 == 0: // 4-bit, the group starts on a byte: two levels per byte
			src := packed[c0/2 : (c0+len(seg)+1)/2]
			j := 0
			for ; j+2 <= len(seg); j += 2 {
				lo, hi := nibbles(src[j/2], sym)
				seg[j] = DequantizeValue(lo, sc, z)
				seg[j+1] = DequantizeValue(hi, sc, z)
			}
			if j < len(seg) {
				lo, _ := nibbles(src[j/2], sym)
				seg[j] = DequantizeValue(lo, sc, z)
			}
		default:
			for j := range seg {
				seg[j] = DequantizeValue(getLevel(packed, 4, sym, c0+j), sc, z)
			}
		}
	}
}

// dequantizeStream dequantizes the levels of columns [c0, c0+len(seg)) of a packed row of
// bits-wide levels (3, 5, 6, 7) into seg: the columns before the first multiple of 8 and
// after the last one level by level, the rest eight at a time (bits bytes).
func dequantizeStream(packed []byte, bits int, sym bool, c0 int, seg []float32, sc float32, z int32) {
	j := 0
	for ; j < len(seg) && (c0+j)%8 != 0; j++ {
		seg[j] = DequantizeValue(getLevel(packed, bits, sym, c0+j), sc, z)
	}
	m := fieldMask(bits)
	for ; j+8 <= len(seg); j += 8 {
		u := getChunk(packed[(c0+j)/8*bits:], bits)
		for k := range 8 {
			seg[j+k] = DequantizeValue(signExtend(u>>(uint(k*bits))&m, bits, sym), sc, z)
		}
	}
	for ; j < len(seg); j++ {
		seg[j] = DequantizeValue(getLevel(packed, bits, sym, c0+j), sc, z)
	}
}
