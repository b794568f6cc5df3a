package quant

import (
	"math"
	"runtime"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// CompareTensor agrees with Compare on the flattened values to float64 rounding, 1e-11
// relative for sums of 28800 terms (its
// sums are grouped by blocks of rows), MaxAbs exactly; Signal and Noise are the sums behind
// SQNR and MSE. The rows (300) span many blocks, so the grouping matters.
func TestCompareTensorMatchesCompare(t *testing.T) {
	const rows, cols = 300, 96
	w := testMatrix(10, rows, cols)
	for dt, tc := range tensorCases(w, rows, cols) {
		for _, s := range allSchemes() {
			q, err := QuantizeTensor("w", tc.t, s, SearchOptions{})
			require.NoError(t, err)
			deq := Dequantize(q)
			want, err := CompareChecked(tc.vals, deq)
			require.NoError(t, err)
			var sig, noise float64
			for i, r := range tc.vals {
				sig += float64(r) * float64(r)
				d := float64(deq[i]) - float64(r)
				noise += d * d
			}
			got, err := CompareTensor("w", tc.t, q)
			require.NoError(t, err)
			name := dt + "/" + s.String()
			assert.Equal(t, int64(rows*cols), got.Elements, name)
			assert.Equal(t, want.MaxAbs, got.MaxAbs, name)
			assert.InEpsilon(t, want.MSE, got.MSE, 1e-11, name)
			assert.InEpsilon(t, want.SQNRdB, got.SQNRdB, 1e-11, name)
			assert.InDelta(t, want.Cosine, got.Cosine, 1e-11, name)
			assert.InEpsilon(t, sig, got.Signal, 1e-11, name)
			assert.InEpsilon(t, noise, got.Noise, 1e-11, name)
			assert.InEpsilon(t, got.Noise/float64(rows*cols), got.MSE, 1e-15, name)
		}
	}
}

// Hand case: ref [[1, -2], [0, 4]] against levels that reconstruct [[1, -1], [0, 4]]:
// noise 1, signal 21, MSE 1/4, max error 1, cosine 19/sqrt(21*18).
func TestCompareTensorHand(t *testing.T) {
	ref := tensor.FromF32([]float32{1, -2, 0, 4}, 2, 2)
	s := Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}
	q, err := QuantizeWithParams("h", []float32{1, -1, 0, 4}, 2, 2, s, []float32{1, 1}, nil)
	require.NoError(t, err)
	got, err := CompareTensor("h", ref.Convert(tensor.BF16), q)
	require.NoError(t, err)
	assert.Equal(t, 21.0, got.Signal)
	assert.Equal(t, 1.0, got.Noise)
	assert.Equal(t, 0.25, got.MSE)
	assert.Equal(t, 1.0, got.MaxAbs)
	assert.InDelta(t, 10*math.Log10(21), got.SQNRdB, 1e-12)
	assert.InDelta(t, 19/math.Sqrt(21*18), got.Cosine, 1e-15)

	exact, err := CompareTensor("h", tensor.FromF32([]float32{1, -1, 0, 4}, 2, 2), q)
	require.NoError(t, err)
	assert.True(t, math.IsInf(exact.SQNRdB, 1))
	assert.Equal(t, 1.0, exact.Cosine)

	_, err = CompareTensor("h", tensor.New(tensor.F16, 2, 3), q)
	require.ErrorContains(t, err, `tensor "h": reference is 2x3, quantized tensor 2x2`)
	_, err = CompareTensor("h", tensor.New(tensor.I32, 2, 2), q)
	require.ErrorContains(t, err, "dtype I32 is not F32, F16 or BF16")
	_, err = CompareTensor("h", ref, &QTensor{Name: "bad", Scheme: s, Rows: 2, Cols: 2, Groups: 1})
	require.ErrorContains(t, err, "0 data bytes")
}

// The report's sums are grouped by fixed blocks of rows: the same bits for any worker count.
func TestCompareTensorDeterministicAcrossWorkers(t *testing.T) {
	const rows, cols = 300, 96
	tc := tensorCases(testMatrix(11, rows, cols), rows, cols)["BF16"]
	q, err := QuantizeTensor("w", tc.t, Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}, SearchOptions{})
	require.NoError(t, err)
	run := func(procs int) TensorError {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		e, err := CompareTensor("w", tc.t, q)
		require.NoError(t, err)
		return e
	}
	assert.Equal(t, run(1), run(7))
}

// groupMinMax must give the builtins' bits (signed zeros included) on any finite group,
// and the first NaN/Inf otherwise.
func TestGroupMinMaxMatchesBuiltins(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 0x1p-149, -0x1p-149, 0x1p-126, -0x1p-126,
		math.MaxFloat32, -math.MaxFloat32, 1, -1, 0.5, -0.5}
	r := testutil.Rand(12)
	for trial := 0; trial < 2000; trial++ {
		n := 1 + r.IntN(9)
		vals := make([]float32, n)
		for i := range vals {
			if r.IntN(2) == 0 {
				vals[i] = special[r.IntN(len(special))]
			} else {
				vals[i] = math.Float32frombits(r.Uint32() & 0xff7fffff) // finite: exponent < 255
			}
		}
		wantMn, wantMx := vals[0], vals[0]
		for _, x := range vals {
			wantMn, wantMx = min(wantMn, x), max(wantMx, x)
		}
		mn, mx, bad := groupMinMax(vals)
		require.Equal(t, -1, bad, "%v", vals)
		require.Equal(t, math.Float32bits(wantMn), math.Float32bits(mn), "min of %v", vals)
		require.Equal(t, math.Float32bits(wantMx), math.Float32bits(mx), "max of %v", vals)

		for _, nf := range []float32{float32(math.NaN()), -float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			at := r.IntN(n)
			withBad := append([]float32(nil), vals...)
			withBad[at] = nf
			_, _, bad = groupMinMax(withBad)
			require.Equal(t, at, bad, "%v", withBad)
		}
	}
}

// level's float32 rounding trick agrees with QuantizeValue on ties, near-ties, huge
// quotients (clamped), quotients that overflow to Inf, subnormal scales and random values.
func TestLevelMatchesQuantizeValue(t *testing.T) {
	r := testutil.Rand(15)
	var xs []float32
	for k := -300; k <= 300; k++ {
		tie := float32(k) + 0.5
		xs = append(xs, tie, math.Nextafter32(tie, 0), math.Nextafter32(tie, 1000), float32(k), -tie)
	}
	xs = append(xs, 0x1p22, -0x1p22, 0x1p23+1, -0x1p23-1, 3e38, -3e38, 0, float32(math.Copysign(0, -1)), 0x1p-149, -0.3)
	for i := 0; i < 20000; i++ {
		xs = append(xs, math.Float32frombits(r.Uint32()&0xff7fffff))
	}
	scales := []float32{1, 0.5, 0.25, 3, 1.0 / 7.5, 0.0137, 1e-30, 0x1p-149, 3e38}
	for _, s := range allSchemes() {
		qlo, qhi := s.QRange()
		zeros := []int32{0}
		if !s.Symmetric {
			zeros = []int32{0, 1, qhi / 2, qhi}
		}
		for _, sc := range scales {
			for _, z := range zeros {
				for _, x := range xs {
					if want, got := s.QuantizeValue(x, sc, z), int32(level(x, sc, float32(z), float32(qlo), float32(qhi))); got != want {
						require.Equal(t, want, got, "%s x=%v scale=%v zero=%d", s, x, sc, z)
					}
				}
			}
		}
	}
}
