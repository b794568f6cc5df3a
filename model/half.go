package model

import (
	"fmt"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// A lazy model keeps the embedding, lm_head and decoder blocks' linear weights of a BF16 or
// F16 checkpoint as the checkpoint's 16-bit values, half the memory of float32, and
// converts them where they are used: a token's embedding row when it is looked up, a
// linear layer's weight rows as the matmul packs them. Both conversions are exact, so the same float32 values enter the
// same arithmetic and the bits are those of the float32 model.

// rowSource gives rows n0..n1 of a [N, K] weight matrix as float32 ([n1-n0, K]): a view
// of a float32 matrix, or 16-bit values converted into scratch (at least (n1-n0)*K long).
type rowSource interface {
	rows(n0, n1, K int, scratch []float32) []float32
}

// f32Rows is a float32 matrix: its rows are views.
type f32Rows []float32

func (w f32Rows) rows(n0, n1, K int, _ []float32) []float32 { return w[n0*K : n1*K] }

// qRows is a quantized matrix: its rows are dequantized as they are read
// (quant.DequantizeRowsInto), Dequantize's values.
type qRows struct{ q *quant.QTensor }

func (w qRows) rows(n0, n1, _ int, scratch []float32) []float32 {
	return quant.DequantizeRowsInto(w.q, scratch, n0, n1)
}

// halfMatrix is a [N, K] matrix of BF16 or F16 values.
type halfMatrix struct {
	bits  []uint16
	dtype tensor.DType
	N, K  int
}

func (h *halfMatrix) rows(n0, n1, K int, scratch []float32) []float32 {
	src := h.bits[n0*K : n1*K]
	dst := scratch[:len(src)]
	if h.dtype == tensor.F16 {
		return tensor.F16ToF32Slice(dst, src)
	}
	return tensor.BF16ToF32Slice(dst, src)
}

// denseOf is the full-precision layer of weight t ([n, k], checked): float32 weights, or
// a BF16/F16 tensor the model owns kept 16-bit (Dense's bits from half the memory).
func denseOf(t *tensor.Tensor, bias []float32, n, k int) *Dense {
	if t.DType == tensor.F32 {
		return &Dense{W: t.F32(), Bias: bias, N: n, K: k}
	}
	return &Dense{Bias: bias, N: n, K: k, src: &halfMatrix{bits: t.U16(), dtype: t.DType, N: n, K: k}}
}

// table is the embedding: float32 rows or 16-bit ones.
type table struct {
	f32  []float32
	half *halfMatrix
}

// row writes row t of the table (D values) into dst.
func (tb table) row(dst []float32, t, D int) {
	if tb.half != nil {
		tb.half.rows(t, t+1, D, dst)
		return
	}
	copy(dst, tb.f32[t*D:(t+1)*D])
}

// fixedMatrix builds the matrix of a fixed tensor (embedding or lm_head) from t, which
// loadFixed's getter returns checked: F32, or a BF16/F16 tensor the model owns.
func fixedMatrix(t *tensor.Tensor, n, k int) (table, Linear) {
	if t.DType == tensor.F32 {
		v := t.F32()
		return table{f32: v}, &Dense{W: v, N: n, K: k}
	}
	d := denseOf(t, nil, n, k)
	return table{half: d.src.(*halfMatrix)}, d
}

// halfCopy returns a copy of the 16-bit tensor t (which may be a view of a mapped file) of
// the given shape, after checking its values as convert does, without holding a float32
// copy of it.
func halfCopy(name string, t *tensor.Tensor, shape []int) (*tensor.Tensor, error) {
	if err := checkHalf(name, t, shape); err != nil {
		return nil, err
	}
	return tensor.FromU16(t.DType, append([]uint16(nil), t.U16()...), shape...), nil
}

// checkHalf checks a 16-bit tensor's shape and values as convert does, a chunk at a time.
func checkHalf(name string, t *tensor.Tensor, shape []int) error {
	if err := checkTensor(name, t, shape); err != nil {
		return err
	}
	bits := t.U16()
	const chunk = 1 << 16
	buf := make([]float32, chunk)
	for lo := 0; lo < len(bits); lo += chunk {
		hi := min(lo+chunk, len(bits))
		h := &halfMatrix{bits: bits[lo:hi], dtype: t.DType}
		v := h.rows(0, 1, hi-lo, buf)
		if i := firstNonFinite(v); i >= 0 {
			return fmt.Errorf("model: tensor %s has a non-finite value %g at element %d", name, v[i], lo+i)
		}
	}
	return nil
}
