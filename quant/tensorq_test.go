package quant

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elementwiseQuantize is the element-by-element definition the row kernels must repeat:
// every level is s.QuantizeValue(x, scale, zero) stored with putLevel (the loop
// QuantizeWithParams had before it gained per-Layout loops).
func elementwiseQuantize(t *testing.T, w []float32, rows, cols int, s Scheme, scales []float32, zeros []int32) []byte {
	l, err := checkLayout("ref", len(w), rows, cols, s)
	require.NoError(t, err)
	q := newQTensor("ref", s, l, scales, zeros)
	rb := q.rowBytes()
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := l.Param(r, c)
			putLevel(q.Data[r*rb:(r+1)*rb], s.Bits, c, s.QuantizeValue(w[r*cols+c], q.Scales[i], q.zeroAt(i)))
		}
	}
	return q.Data
}

// naiveMaxParams is the max search written out: min and max of each group by a plain loop,
// then ComputeParams.
func naiveMaxParams(w []float32, rows, cols int, s Scheme) ([]float32, []int32) {
	size, groups, _ := s.GroupCols(cols)
	var lo, hi []float32
	for r := 0; r < rows; r++ {
		for g := 0; g < groups; g++ {
			mn, mx := w[r*cols+g*size], w[r*cols+g*size]
			for _, x := range w[r*cols+g*size : r*cols+(g+1)*size] {
				mn, mx = min(mn, x), max(mx, x)
			}
			lo, hi = append(lo, mn), append(hi, mx)
		}
	}
	if s.Granularity == PerTensor {
		lo, hi = foldRanges(lo, hi)
	}
	return Params(s, lo, hi)
}

// tensorCase is one weight in every float dtype, with the float32 values each one holds.
type tensorCase struct {
	t    *tensor.Tensor
	vals []float32 // t.ToF32()
}

func tensorCases(w []float32, rows, cols int) map[string]tensorCase {
	f32 := tensor.FromF32(w, rows, cols)
	out := map[string]tensorCase{}
	for _, d := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		t := f32
		if d != tensor.F32 {
			t = f32.Convert(d)
		}
		out[d.String()] = tensorCase{t: t, vals: t.ToF32()}
	}
	return out
}

func searchCases() []SearchOptions {
	return []SearchOptions{{Method: SearchMax}, {Method: SearchPercentile, Percentile: 99}, {Method: SearchMSE}}
}

// QuantizeTensor gives the bits of Quantize on the converted values, which are the bits of
// the element-by-element definition, for every dtype, scheme and search. Widths 96 (groups
// of 32) and 172 (fitted to groups of 43, which start on odd columns) cover both 4-bit loops.
func TestQuantizeTensorMatchesFloatPath(t *testing.T) {
	for _, cols := range []int{96, 172} {
		const rows = 37
		for dt, tc := range tensorCases(testMatrix(7, rows, cols), rows, cols) {
			for _, s := range allSchemes() {
				s = s.FitCols(cols)
				for _, opt := range searchCases() {
					name := fmt.Sprintf("%d/%s/%s/%s", cols, dt, s, opt.Method)
					q, err := QuantizeTensor("w", tc.t, s, opt)
					require.NoError(t, err, name)
					want, err := Quantize("w", tc.vals, rows, cols, s, opt)
					require.NoError(t, err, name)
					require.Equal(t, want.Scales, q.Scales, name)
					require.Equal(t, want.Zeros, q.Zeros, name)
					require.Equal(t, want.Data, q.Data, name)
					require.Equal(t, elementwiseQuantize(t, tc.vals, rows, cols, s, want.Scales, want.Zeros), q.Data, name)
					if opt.Method == SearchMax {
						sc, z := naiveMaxParams(tc.vals, rows, cols, s)
						require.Equal(t, sc, q.Scales, name)
						require.Equal(t, z, q.Zeros, name)
					}

					sc, z, err := SearchParamsTensor("w", tc.t, s, opt)
					require.NoError(t, err, name)
					require.Equal(t, want.Scales, sc, name)
					require.Equal(t, want.Zeros, z, name)
					q2, err := QuantizeTensorWithParams("w", tc.t, s, sc, z)
					require.NoError(t, err, name)
					require.Equal(t, want.Data, q2.Data, name)
				}
				lo, hi, err := GroupRangesTensor("w", tc.t, s)
				require.NoError(t, err)
				wlo, whi, err := GroupRanges("w", tc.vals, rows, cols, s)
				require.NoError(t, err)
				require.Equal(t, wlo, lo)
				require.Equal(t, whi, hi)
			}
		}
	}
}

// A search registered from outside sees the whole matrix: QuantizeTensor hands it the
// converted values.
func TestQuantizeTensorRegisteredSearch(t *testing.T) {
	const m SearchMethod = 201
	var seen []float32
	registerSearch(m, "test-whole", func(name string, w []float32, l Layout, s Scheme, opt SearchOptions) ([]float32, []int32, error) {
		seen = append([]float32(nil), w...)
		sc := make([]float32, l.NParams())
		for i := range sc {
			sc[i] = 0.01
		}
		return sc, nil, nil
	})
	t.Cleanup(func() { delete(searchNames, m); delete(extraSearches, m) })
	tc := tensorCases(testMatrix(8, 4, 64), 4, 64)["BF16"]
	s := Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}
	q, err := QuantizeTensor("w", tc.t, s, SearchOptions{Method: m})
	require.NoError(t, err)
	assert.Equal(t, tc.vals, seen)
	assert.Equal(t, []float32{0.01, 0.01, 0.01, 0.01}, q.Scales)
	assert.Equal(t, elementwiseQuantize(t, tc.vals, 4, 64, s, q.Scales, nil), q.Data)
}

// A NaN or Inf is reported at the first such element in row-major order, with the same
// message as the float32 path, for every dtype and entry point.
func TestQuantizeTensorNonFinite(t *testing.T) {
	w := testMatrix(5, 4, 64)
	w[2*64+33] = float32(math.Inf(-1))
	w[3*64+1] = float32(math.NaN())
	want := fmt.Sprintf("tensor %q: non-finite value %v at row 2, col 33", "blk.0.wq", float32(math.Inf(-1)))
	for dt, tc := range tensorCases(w, 4, 64) {
		for _, s := range allSchemes() {
			for _, opt := range searchCases() {
				_, err := QuantizeTensor("blk.0.wq", tc.t, s, opt)
				require.ErrorContains(t, err, want, "%s %s %s", dt, s, opt.Method)
				_, _, err = SearchParamsTensor("blk.0.wq", tc.t, s, opt)
				require.ErrorContains(t, err, want, "%s %s %s", dt, s, opt.Method)
			}
			_, _, err := GroupRangesTensor("blk.0.wq", tc.t, s)
			require.ErrorContains(t, err, want, "%s %s", dt, s)
			scales, zeros := unitParams(t, s, 4, 64)
			_, err = QuantizeTensorWithParams("blk.0.wq", tc.t, s, scales, zeros)
			require.ErrorContains(t, err, want, "%s %s", dt, s)
		}
	}
}

func TestQuantizeTensorBadInput(t *testing.T) {
	s := Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 32}
	cases := []struct {
		t    *tensor.Tensor
		want string
	}{
		{nil, `tensor "x": nil tensor`},
		{tensor.New(tensor.BF16, 2, 3, 32), "weight must be 2-D [out, in], got shape [2 3 32]"},
		{tensor.New(tensor.I8, 2, 32), "weight dtype I8 is not F32, F16 or BF16"},
		{&tensor.Tensor{DType: tensor.F16, Shape: []int{2, 32}, Data: make([]byte, 100)}, "100 data bytes for F16[2 32] (want 128)"},
		{tensor.New(tensor.BF16, 2, 40), "40 input columns do not divide by group size 32"},
	}
	for _, c := range cases {
		_, err := QuantizeTensor("x", c.t, s, SearchOptions{})
		require.ErrorContains(t, err, c.want)
		_, _, err = SearchParamsTensor("x", c.t, s, SearchOptions{})
		require.ErrorContains(t, err, c.want)
		_, err = QuantizeTensorWithParams("x", c.t, s, nil, nil)
		require.ErrorContains(t, err, c.want)
	}
	_, err := QuantizeTensor("x", tensor.New(tensor.BF16, 2, 32), Scheme{Bits: 8, Granularity: PerChannel}, SearchOptions{Method: SearchPercentile, Percentile: 30})
	require.ErrorContains(t, err, "percentile 30 out of range")
	_, err = QuantizeTensorWithParams("x", tensor.New(tensor.BF16, 2, 32), s, []float32{1}, nil)
	require.ErrorContains(t, err, "1 scales for w4g32 (want 2)")
}

// Same bits whatever the worker count.
func TestQuantizeTensorDeterministicAcrossWorkers(t *testing.T) {
	const rows, cols = 70, 96
	tc := tensorCases(testMatrix(9, rows, cols), rows, cols)["F16"]
	run := func(procs int) []*QTensor {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var out []*QTensor
		for _, s := range allSchemes() {
			for _, opt := range searchCases() {
				q, err := QuantizeTensor("w", tc.t, s, opt)
				require.NoError(t, err)
				out = append(out, q)
			}
		}
		return out
	}
	one, many := run(1), run(5)
	for i := range one {
		require.Equal(t, one[i], many[i])
	}
}

// The one-pass QuantizeTensorWithError gives the bits of QuantizeTensor and CompareTensor
// called one after the other, for every dtype, scheme (row-local or not) and search. Width
// 96 (groups of 32) takes the fused loops of quantizeRowSums, 172 (groups of 43) the
// two-step path; row 5 is all zeros (scale 1).
func TestQuantizeTensorWithErrorMatchesTwoPasses(t *testing.T) {
	for _, cols := range []int{96, 172} {
		const rows = 70
		w := testMatrix(13, rows, cols)
		clear(w[5*cols : 6*cols])
		for dt, tc := range tensorCases(w, rows, cols) {
			for _, s := range allSchemes() {
				s = s.FitCols(cols)
				for _, opt := range searchCases() {
					name := fmt.Sprintf("%d/%s/%s/%s", cols, dt, s, opt.Method)
					q, e, err := QuantizeTensorWithError("w", tc.t, s, opt)
					require.NoError(t, err, name)
					want, err := QuantizeTensor("w", tc.t, s, opt)
					require.NoError(t, err, name)
					require.Equal(t, want, q, name)
					wantErr, err := CompareTensor("w", tc.t, want)
					require.NoError(t, err, name)
					require.Equal(t, wantErr, e, name)
				}
			}
		}
	}
	w := testMatrix(14, 4, 64)
	w[100] = float32(math.NaN())
	_, _, err := QuantizeTensorWithError("blk.1.w", tensor.FromF32(w, 4, 64).Convert(tensor.F16), Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel}, SearchOptions{})
	require.ErrorContains(t, err, `tensor "blk.1.w": non-finite value NaN at row 1, col 36`)
}
