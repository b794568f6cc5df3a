package quant

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantizeActivationsPerTokenHand(t *testing.T) {
	// Row 0: amax 127 -> scale 1; -63.5 -> -64 (tie to even), 0.5 -> 0, 1.5 -> 2.
	// Row 1: all zero -> scale 1, levels 0. Row 2: amax 254 -> scale 2; 3 -> 1.5 -> 2.
	x := []float32{127, -63.5, 0.5, 1.5, -127, 0, 0, 0, 0, 0, 254, 3, -254, 1, -5}
	q, scales := QuantizeActivationsPerToken(x, 3, 5)
	assert.Equal(t, []float32{1, 1, 2}, scales)
	assert.Equal(t, []int8{127, -64, 0, 2, -127, 0, 0, 0, 0, 0, 127, 2, -127, 0, -2}, q)

	q, scales = QuantizeActivationsPerToken(x, 2, 5)
	assert.Nil(t, q)
	assert.Nil(t, scales)
}

func TestQuantizeActivationsStatic(t *testing.T) {
	// amax 12.7 -> scale 0.1 (float32 division); beyond amax saturates to +-127, never -128.
	q, scale := QuantizeActivationsStatic([]float32{100, -100, 0, 12.7}, 12.7)
	assert.Equal(t, float32(12.7)/127, scale)
	assert.Equal(t, []int8{127, -127, 0, 127}, q)
	q, scale = QuantizeActivationsStatic([]float32{1, -1}, 0)
	assert.Equal(t, float32(1), scale)
	assert.Equal(t, []int8{1, -1}, q)
	q, _ = QuantizeActivationsStatic([]float32{float32(math.NaN())}, 1)
	assert.Equal(t, []int8{0}, q)
}

func TestQuantizeActivationsBound(t *testing.T) {
	const M, K = 8, 256
	x := testutil.StudentT(testutil.Rand(14), M*K, 4)
	q, scales := QuantizeActivationsPerToken(x, M, K)
	for i, v := range x {
		s := scales[i/K]
		require.GreaterOrEqual(t, q[i], int8(-127))
		require.LessOrEqual(t, math.Abs(float64(float32(q[i])*s-v)), halfStep(s, v), "element %d", i)
	}
}

func TestCompare(t *testing.T) {
	st := Compare([]float32{1, 2, 3, 4}, []float32{1, 2, 3, 5})
	assert.InDelta(t, 0.25, st.MSE, 1e-15)
	assert.Equal(t, 1.0, st.MaxAbs)
	assert.InDelta(t, 10*math.Log10(30.0/1), st.SQNRdB, 1e-12)
	assert.InDelta(t, 34/(math.Sqrt(30)*math.Sqrt(39)), st.Cosine, 1e-15)

	exact := Compare([]float32{1, -2}, []float32{1, -2})
	assert.True(t, math.IsInf(exact.SQNRdB, 1))
	assert.Equal(t, 1.0, exact.Cosine)
	assert.Zero(t, exact.MSE)

	zeros := Compare([]float32{0, 0}, []float32{0, 0})
	assert.True(t, math.IsInf(zeros.SQNRdB, 1))
	assert.Equal(t, 1.0, zeros.Cosine)
	noisy := Compare([]float32{0, 0}, []float32{0, 1})
	assert.True(t, math.IsInf(noisy.SQNRdB, -1))
	assert.Equal(t, 0.0, noisy.Cosine)

	bad := Compare([]float32{1}, []float32{1, 2})
	assert.True(t, math.IsNaN(bad.MSE) && math.IsNaN(bad.SQNRdB) && math.IsNaN(bad.Cosine) && math.IsNaN(bad.MaxAbs))
	_, err := CompareChecked([]float32{1}, nil)
	require.ErrorContains(t, err, "compare 1 reference values with 0")

	// The largest error is |got-ref| over both signs; an infinite error is +Inf and a NaN
	// one (here Inf-Inf) is NaN, whatever comes after it.
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	assert.Equal(t, 3.0, Compare([]float32{1, 2, 3}, []float32{1.5, -1, 3}).MaxAbs)
	assert.True(t, math.IsInf(Compare([]float32{1, 2}, []float32{-inf, 2}).MaxAbs, 1))
	assert.True(t, math.IsNaN(Compare([]float32{inf, 2}, []float32{inf, 9}).MaxAbs))
	assert.True(t, math.IsNaN(Compare([]float32{1, 2}, []float32{nan, 2}).MaxAbs))
}

func TestQuantizeActivationsNaNIgnoredForAmax(t *testing.T) {
	q, scales := QuantizeActivationsPerToken([]float32{float32(math.NaN()), 254, -127}, 1, 3)
	assert.Equal(t, []float32{2}, scales)
	assert.Equal(t, []int8{0, 127, -64}, q) // -63.5 -> -64 (tie to even)
}
