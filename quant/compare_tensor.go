package quant

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/tensor"
)

// TensorError is the reconstruction error of a quantized weight against its original, with
// the sums a report over many tensors needs (overall SQNR = sum Signal / sum Noise).
type TensorError struct {
	ErrorStats
	Elements int64
	Signal   float64 // sum of ref^2
	Noise    float64 // sum of (dequantized - ref)^2
}

// errorSums are the float64 sums behind ErrorStats, and the extremes of the error.
type errorSums struct {
	sig, noise, gg, dot float64
	dmin, dmax          float64 // min and max of got-ref (0 when none)
}

// add accumulates one stretch of reference and reconstructed values, in index order.
func (e *errorSums) add(ref, got []float32) {
	got = got[:len(ref)]
	sig, noise, gg, dot, dmin, dmax := e.sig, e.noise, e.gg, e.dot, e.dmin, e.dmax
	for i, r := range ref {
		a, b := float64(r), float64(got[i])
		d := b - a
		sig += a * a
		gg += b * b
		noise += d * d
		dot += a * b
		// The largest |d| is max(dmax, -dmin): two comparisons that rarely succeed,
		// cheaper than math.Abs and math.Max per element. A NaN d is missed here but makes
		// noise NaN, and maxAbs reports it from there.
		if d > dmax {
			dmax = d
		}
		if d < dmin {
			dmin = d
		}
	}
	e.sig, e.noise, e.gg, e.dot, e.dmin, e.dmax = sig, noise, gg, dot, dmin, dmax
}

// maxAbs is the largest |got-ref| seen: NaN when some difference was NaN (as math.Max
// would give), which is exactly when noise is NaN (its terms are squares, never -Inf).
func (e errorSums) maxAbs() float64 {
	if math.IsNaN(e.noise) {
		return math.NaN()
	}
	return math.Max(e.dmax, -e.dmin)
}

// merge adds o's sums into e.
func (e *errorSums) merge(o errorSums) {
	e.sig += o.sig
	e.noise += o.noise
	e.gg += o.gg
	e.dot += o.dot
	e.dmin = math.Min(e.dmin, o.dmin)
	e.dmax = math.Max(e.dmax, o.dmax)
}

// stats turns the sums over n elements into ErrorStats (the definitions of Compare).
func (e errorSums) stats(n int) ErrorStats {
	st := ErrorStats{MaxAbs: e.maxAbs()}
	if n > 0 {
		st.MSE = e.noise / float64(n)
	}
	switch {
	case e.noise == 0:
		st.SQNRdB = math.Inf(1)
	case e.sig == 0:
		st.SQNRdB = math.Inf(-1)
	default:
		st.SQNRdB = 10 * math.Log10(e.sig/e.noise)
	}
	switch {
	case e.noise == 0: // identical (also both all zero): exactly 1, not 1 - rounding
		st.Cosine = 1
	case e.sig == 0 || e.gg == 0:
		st.Cosine = 0
	default:
		st.Cosine = math.Max(-1, math.Min(1, e.dot/(math.Sqrt(e.sig)*math.Sqrt(e.gg))))
	}
	return st
}

// CompareTensor measures q (a quantized ref) against ref, a 2-D F32/F16/BF16 tensor of
// q's shape, without materialising either in full: each worker converts one row of ref and
// dequantizes the same row of q into row buffers.
//
// The sums are float64, as Compare's, but taken per block of rowChunk rows (in index order
// within the block) and then added block by block in row order. The grouping is fixed, so
// the result is deterministic and independent of GOMAXPROCS; it differs from Compare on the
// flattened values (one running sum) only by float64 rounding, of the order of n ulps at worst.
func CompareTensor(name string, ref *tensor.Tensor, q *QTensor) (TensorError, error) {
	m, err := matrixOf(name, ref)
	if err != nil {
		return TensorError{}, err
	}
	if err := q.Validate(); err != nil {
		return TensorError{}, err
	}
	if m.rows != q.Rows || m.cols != q.Cols {
		return TensorError{}, fmt.Errorf("quant: tensor %q: reference is %dx%d, quantized tensor %dx%d", name, m.rows, m.cols, q.Rows, q.Cols)
	}
	l := q.Layout()
	rb := q.rowBytes()
	blocks := make([]errorSums, (m.rows+rowChunk-1)/rowChunk)
	bufs := m.rowBufs()
	_ = parallelRows(m.rows, func(r0, r1 int) error {
		buf, dq := bufs.get()
		defer bufs.put(buf, dq)
		var e errorSums
		for r := r0; r < r1; r++ {
			dequantizeRow(q, l, q.Data[r*rb:(r+1)*rb], r, dq)
			e.add(m.row(r, buf), dq)
		}
		blocks[r0/rowChunk] = e
		return nil
	})
	return tensorError(blocks, m.rows*m.cols), nil
}

// tensorError adds the blocks' sums in block order and derives the statistics over n
// elements.
func tensorError(blocks []errorSums, n int) TensorError {
	var total errorSums
	for _, b := range blocks {
		total.merge(b)
	}
	return TensorError{ErrorStats: total.stats(n), Elements: int64(n), Signal: total.sig, Noise: total.noise}
}
