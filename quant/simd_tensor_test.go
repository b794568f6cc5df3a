package quant

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End to end: QuantizeTensorWithError and the other row-wise paths give the same bits with
// the AVX2 kernels and with the Go loops, over every width, symmetry and granularity, on
// random and adversarial values.

// quantResult is everything a quantization gives, as bits.
type quantResult struct {
	Data   []byte
	Scales []uint32
	Zeros  []int32
	Err    [4]uint64 // MSE, SQNR, cosine, max |error|
	Sums   [2]uint64 // signal, noise
	Fail   string
}

func resultOf(q *QTensor, e TensorError, err error) quantResult {
	if err != nil {
		return quantResult{Fail: err.Error()}
	}
	r := quantResult{Data: q.Data, Zeros: q.Zeros}
	for _, s := range q.Scales {
		r.Scales = append(r.Scales, math.Float32bits(s))
	}
	r.Err = [4]uint64{math.Float64bits(e.MSE), math.Float64bits(e.SQNRdB), math.Float64bits(e.Cosine), math.Float64bits(e.MaxAbs)}
	r.Sums = [2]uint64{math.Float64bits(e.Signal), math.Float64bits(e.Noise)}
	return r
}

// simdSchemes covers the kernel's cases (4 and 8 bits, groups of 32, 64, 128, per
// channel) and the ones it leaves to Go (other widths, groups of 8 and 48, per tensor).
func simdSchemes() []Scheme {
	var out []Scheme
	for bits := MinBits; bits <= MaxBits; bits++ {
		for _, sym := range []bool{true, false} {
			out = append(out, Scheme{Bits: bits, Symmetric: sym, Granularity: PerChannel},
				Scheme{Bits: bits, Symmetric: sym, Granularity: PerTensor})
			for _, g := range []int{8, 32, 48, 64, 128} {
				out = append(out, Scheme{Bits: bits, Symmetric: sym, Granularity: PerGroup, GroupSize: g})
			}
		}
	}
	return out
}

func TestSIMDQuantizeTensorEveryScheme(t *testing.T) {
	r := testutil.Rand(21)
	// 384 columns: every group size above divides it; 37 rows: a last block of 5 rows.
	const rows, cols = 37, 384
	w := testMatrix(5, rows, cols)
	adversarial(r, w[4*cols:], 32)
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.F16} {
		tt := typed(w, dt, rows, cols)
		for _, s := range simdSchemes() {
			t.Run(fmt.Sprintf("%s/%s", dt, s), func(t *testing.T) {
				got, want := both(t, func() quantResult {
					return resultOf(QuantizeTensorWithError("w", tt, s, SearchOptions{}))
				})
				require.Empty(t, got.Fail)
				assert.Equal(t, want, got)
				// Quantize then compare, both row-wise, agree with the one pass.
				q, err := QuantizeTensor("w", tt, s, SearchOptions{})
				require.NoError(t, err)
				e, err := CompareTensor("w", tt, q)
				assert.Equal(t, want, resultOf(q, e, err))
			})
		}
	}
}

// Per channel with a width that is not a multiple of 32 (nor of 8): the kernel takes the
// first columns of the row, the Go loop the rest; odd widths put the last 4-bit level in
// a half byte.
func TestSIMDQuantizeOddWidths(t *testing.T) {
	r := testutil.Rand(23)
	for _, cols := range []int{31, 33, 65, 101, 127, 200, 4097} {
		rows := 19
		w := testMatrix(uint64(cols), rows, cols)
		adversarial(r, w[4*cols:], 8)
		for _, bits := range []int{4, 5, 8} {
			for _, sym := range []bool{true, false} {
				s := Scheme{Bits: bits, Symmetric: sym, Granularity: PerChannel}
				for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
					t.Run(fmt.Sprintf("%d/%s/%s", cols, s, dt), func(t *testing.T) {
						tt := typed(w, dt, rows, cols)
						got, want := both(t, func() quantResult {
							return resultOf(QuantizeTensorWithError("w", tt, s, SearchOptions{}))
						})
						require.Empty(t, got.Fail)
						assert.Equal(t, want, got)
					})
				}
			}
		}
	}
}

// The other searches and the given-parameter path go through the same row ranges and
// level loops.
func TestSIMDOtherPaths(t *testing.T) {
	const rows, cols = 40, 256
	w := testMatrix(8, rows, cols)
	adversarial(testutil.Rand(9), w[4*cols:], 64)
	tt := typed(w, tensor.BF16, rows, cols)
	for _, s := range []Scheme{{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 64}, {Bits: 8, Granularity: PerChannel}} {
		for _, opt := range []SearchOptions{{Method: SearchPercentile, Percentile: 99}, {Method: SearchMSE}} {
			t.Run(s.String()+"/"+opt.Method.String(), func(t *testing.T) {
				got, want := both(t, func() quantResult {
					return resultOf(QuantizeTensorWithError("w", tt, s, opt))
				})
				require.Empty(t, got.Fail)
				assert.Equal(t, want, got)
			})
		}
		t.Run(s.String()+"/params", func(t *testing.T) {
			got, want := both(t, func() quantResult {
				scales, zeros, err := SearchParamsTensor("w", tt, s, SearchOptions{})
				require.NoError(t, err)
				q, err := QuantizeWithParams("w", tt.ToF32(), rows, cols, s, scales, zeros)
				if err != nil {
					return quantResult{Fail: err.Error()}
				}
				return resultOf(q, TensorError{}, nil)
			})
			assert.Equal(t, want, got)
		})
		t.Run(s.String()+"/tiny-scales", func(t *testing.T) {
			// x/scale overflows to +-Inf for most values: the clamp takes them to the ends.
			l, err := NewLayout(s, rows, cols)
			require.NoError(t, err)
			scales := make([]float32, l.NParams())
			var zeros []int32
			for i := range scales {
				scales[i] = 0x1p-140
				if !s.Symmetric {
					zeros = append(zeros, int32(i%200))
				}
			}
			got, want := both(t, func() quantResult {
				q, err := QuantizeTensorWithParams("w", tt, s, scales, zeros)
				if err != nil {
					return quantResult{Fail: err.Error()}
				}
				return resultOf(q, TensorError{}, nil)
			})
			require.Empty(t, got.Fail)
			assert.Equal(t, want, got)
		})
	}
}

// With the kernels forced off, the Go path still quantizes a known case right: levels of
// a hand-checked row (the kernels' answer is the same by the tests above).
func TestSIMDForcedOffHandCase(t *testing.T) {
	useSIMDWas := useSIMD
	useSIMD = false
	t.Cleanup(func() { useSIMD = useSIMDWas })
	// amax 7.5 -> scale 1; x/scale rounds half to even: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2,
	// 7.5 -> 8 clamps to 7, -7.5 -> -8.
	row := []float32{0.5, 1.5, -2.5, 7.5, -7.5, 3.2, -0.0, 6.6}
	w := append(append([]float32{}, row...), make([]float32, 24)...)
	s := Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 32}
	q, e, err := QuantizeTensorWithError("w", tensor.FromF32(w, 1, 32), s, SearchOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int32{0, 2, -2, 7, -8, 3, 0, 7}, q.Levels()[:8])
	assert.Equal(t, []float32{1}, q.Scales)
	// Errors 0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0, 0.4 (in float32 arithmetic).
	assert.InDelta(t, (5*0.25+0.04+0.16)/32, e.MSE, 1e-7)
	assert.InDelta(t, 0.5, e.MaxAbs, 1e-9)
}

// QuantizeReaderWithError reads blocks of rows with ReadAt and gives
// QuantizeTensorWithError's bits, on the row-local path and off it, and the same errors.
func TestQuantizeReaderWithError(t *testing.T) {
	const rows, cols = 37, 256
	w := testMatrix(31, rows, cols)
	schemes := []Scheme{
		{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 128},
		{Bits: 8, Granularity: PerChannel},
		{Bits: 4, Symmetric: true, Granularity: PerTensor}, // not row-local: read whole
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.F16} {
		tt := typed(w, dt, rows, cols)
		for _, s := range schemes {
			for _, opt := range []SearchOptions{{}, {Method: SearchPercentile, Percentile: 99.9}} {
				want := resultOf(QuantizeTensorWithError("w", tt, s, opt))
				src := TensorSource{R: bytes.NewReader(tt.Data), DType: dt, Rows: rows, Cols: cols}
				got := resultOf(QuantizeReaderWithError("w", src, s, opt))
				assert.Equal(t, want, got, "%s %s %s", dt, s, opt.Method)
				// Reused storage (dirty, larger than needed) gives the same bits.
				src.Levels = bytes.Repeat([]byte{0xa5}, len(want.Data)+100)
				q, e, err := QuantizeReaderWithError("w", src, s, opt)
				got = resultOf(q, e, err)
				if err == nil && s.Granularity != PerTensor {
					assert.Same(t, &src.Levels[0], &q.Data[0], "the levels reuse the storage")
				}
				require.Empty(t, want.Fail)
				assert.Equal(t, want, got, "%s %s %s", dt, s, opt.Method)
			}
		}
	}
	s := schemes[0]
	bad := append([]float32{}, w...)
	bad[20*cols+77] = float32(math.Inf(-1))
	tt := typed(bad, tensor.BF16, rows, cols)
	_, _, want := QuantizeTensorWithError("w", tt, s, SearchOptions{})
	_, _, got := QuantizeReaderWithError("w", TensorSource{R: bytes.NewReader(tt.Data), DType: tensor.BF16, Rows: rows, Cols: cols}, s, SearchOptions{})
	require.Error(t, want)
	assert.Equal(t, want.Error(), errString(got))
	assert.Contains(t, want.Error(), "row 20, col 77")

	good := typed(w, tensor.BF16, rows, cols)
	short := bytes.NewReader(good.Data[:len(good.Data)-10])
	_, _, err := QuantizeReaderWithError("w", TensorSource{R: short, DType: tensor.BF16, Rows: rows, Cols: cols}, s, SearchOptions{})
	assert.ErrorContains(t, err, `tensor "w": read rows 32 to 36: unexpected EOF`)
	_, _, err = QuantizeReaderWithError("w", TensorSource{R: short, DType: tensor.I8, Rows: rows, Cols: cols}, s, SearchOptions{})
	assert.ErrorContains(t, err, "not F32, F16 or BF16")
}
