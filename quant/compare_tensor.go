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

// errorSums are the float64 sums behind ErrorStats and the largest |got-ref|, each kept
// in 8 lanes: element i of a stretch given to add goes to lane i%8 (the column mod 8 when
// the stretch is a row), summed in index order within its lane. That order lets the AVX2
// kernel (simd.go) hold the lanes in registers and still give the Go loop's bits; sum
// adds the lanes up in a fixed tree. Layout: errorAddAVX2 reads the five arrays in this
// order.
type errorSums struct {
	sig, noise, gg, dot [8]float64 // sums of ref^2, (got-ref)^2, got^2, ref*got
	amax                [8]float64 // max |got-ref| (0 when none; a NaN is never kept)
}

// add accumulates one stretch of reference and reconstructed values.
func (e *errorSums) add(ref, got []float32) {
	got = got[:len(ref)]
	n := simdLen(len(ref))
	if n > 0 {
		errorAddAVX2(e, &ref[0], &got[0], n)
	}
	e.addFrom(ref, got, n)
}

// addFrom is add's Go loop (the kernel's twin) over elements [from, len(ref)).
func (e *errorSums) addFrom(ref, got []float32, from int) {
	for i := from; i < len(ref); i++ {
		k := i & 7
		a, b := float64(ref[i]), float64(got[i])
		d := b - a
		// The conversions round each product before the sum (no fused multiply-add), as
		// the kernel does.
		e.sig[k] += float64(a * a)
		e.noise[k] += float64(d * d)
		e.gg[k] += float64(b * b)
		e.dot[k] += float64(a * b)
		// A NaN d fails the comparison; it makes noise NaN, and maxAbs reports it
		// from there.
		if ad := math.Abs(d); ad > e.amax[k] {
			e.amax[k] = ad
		}
	}
}

// sum adds the 8 lanes of a sum: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
func sum(l *[8]float64) float64 {
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// maxAbs is the largest |got-ref| seen: NaN when some difference was NaN (as math.Max
// would give), which is exactly when noise is NaN (its terms are squares, never -Inf).
func (e *errorSums) maxAbs() float64 {
	if math.IsNaN(sum(&e.noise)) {
		return math.NaN()
	}
	return max(e.amax[0], e.amax[1], e.amax[2], e.amax[3], e.amax[4], e.amax[5], e.amax[6], e.amax[7])
}

// merge adds o's sums into e, lane by lane.
func (e *errorSums) merge(o *errorSums) {
	for k := range 8 {
		e.sig[k] += o.sig[k]
		e.noise[k] += o.noise[k]
		e.gg[k] += o.gg[k]
		e.dot[k] += o.dot[k]
		e.amax[k] = max(e.amax[k], o.amax[k])
	}
}

// stats turns the sums over n elements into ErrorStats (the definitions of Compare).
func (e *errorSums) stats(n int) ErrorStats {
	st := ErrorStats{MaxAbs: e.maxAbs()}
	sig, noise, gg, dot := sum(&e.sig), sum(&e.noise), sum(&e.gg), sum(&e.dot)
	if n > 0 {
		st.MSE = noise / float64(n)
	}
	switch {
	case noise == 0:
		st.SQNRdB = math.Inf(1)
	case sig == 0:
		st.SQNRdB = math.Inf(-1)
	default:
		st.SQNRdB = 10 * math.Log10(sig/noise)
	}
	switch {
	case noise == 0: // identical (also both all zero): exactly 1, not 1 - rounding
		st.Cosine = 1
	case sig == 0 || gg == 0:
		st.Cosine = 0
	default:
		st.Cosine = math.Max(-1, math.Min(1, dot/(math.Sqrt(sig)*math.Sqrt(gg))))
	}
	return st
}

// CompareTensor measures q (a quantized ref) against ref, a 2-D F32/F16/BF16 tensor of
// q's shape, without materialising either in full: each worker converts one row of ref and
// dequantizes the same row of q into row buffers.
//
// The sums are float64, as Compare's, but taken per block of rowChunk rows (in the lanes of
// errorSums, column mod 8, in row-major order within the block) and then added block by
// block in row order, lane by lane. The grouping is fixed, so the result is deterministic
// and independent of GOMAXPROCS; it differs from Compare on the flattened values only by
// float64 rounding, of the order of n ulps at worst.
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
	_ = m.forRowChunks(name, func(mb matrix, r0, r1 int, conv, dq []float32) error {
		var e errorSums
		for r := r0; r < r1; r++ {
			dequantizeRow(q, l, q.Data[r*rb:(r+1)*rb], r, dq)
			e.add(mb.row(r, conv), dq)
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
	for i := range blocks {
		total.merge(&blocks[i])
	}
	return TensorError{ErrorStats: total.stats(n), Elements: int64(n), Signal: sum(&total.sig), Noise: sum(&total.noise)}
}
