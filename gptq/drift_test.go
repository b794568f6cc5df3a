package gptq

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Drift by hand: two tokens of width 2.
func TestDriftHandComputed(t *testing.T) {
	d, err := NewDrift(2)
	require.NoError(t, err)
	ref := []float32{1, 2, 3, 4}
	x := []float32{1, 1, 2, 4} // errors e = (0, 1), (1, 0)
	require.NoError(t, d.Add(ref, x, 2, 2))
	// D = e1 x1ᵀ + e2 x2ᵀ = [[0,0],[1,1]] + [[2,4],[0,0]]
	assert.Equal(t, []float64{2, 4, 1, 1}, d.Sum)
	assert.Equal(t, int64(2), d.Tokens)
	assert.ErrorContains(t, d.Add(ref, x[:2], 2, 2), "drift:")
	assert.ErrorContains(t, d.Add([]float32{1, 2, 3, 4}, []float32{1, 1, 2, float32(math.NaN())}, 2, 2), "non-finite")
	assert.Equal(t, int64(2), d.Tokens)
}

// Without drift the target is the weight itself; with drift and (almost) no damping it
// satisfies the normal equations sum_t (W' x_t - W x_ref_t) x_tᵀ = 0.
func TestFPTargetIsTheLeastSquaresTarget(t *testing.T) {
	const rows, cols, m = 5, 12, 200
	r := testutil.Rand(41)
	w := randWeights(42, rows*cols)
	x := correlatedInputs(r, m, cols)
	ref := make([]float32, len(x))
	for i := range x {
		ref[i] = x[i] + 0.05*float32(r.NormFloat64())*x[i]
	}
	h := hessianOf(t, x, m, cols)
	wt, err := FPTarget("l", w, rows, cols, h, driftOf(t, x, x, m, cols), 0)
	require.NoError(t, err)
	assert.Equal(t, w, wt, "no drift: W' = W")

	wt, err = FPTarget("l", w, rows, cols, h, driftOf(t, ref, x, m, cols), 1e-12)
	require.NoError(t, err)
	assert.NotEqual(t, w, wt)
	var worst, scale float64
	for rr := 0; rr < rows; rr++ {
		g := make([]float64, cols)
		for tk := 0; tk < m; tk++ {
			var res float64
			for c := 0; c < cols; c++ {
				res += float64(wt[rr*cols+c])*float64(x[tk*cols+c]) - float64(w[rr*cols+c])*float64(ref[tk*cols+c])
			}
			for c := 0; c < cols; c++ {
				g[c] += res * float64(x[tk*cols+c])
				scale = max(scale, abs(float64(w[rr*cols+c])*float64(x[tk*cols+c])*float64(x[tk*cols+c])))
			}
		}
		for _, v := range g {
			worst = max(worst, abs(v))
		}
	}
	assert.Less(t, worst/(scale*m), 1e-5, "normal equations hold")

	_, err = FPTarget("l", w, rows, cols, h, &Drift{K: cols, Tokens: 1, Sum: make([]float64, cols*cols)}, 0)
	assert.ErrorContains(t, err, "same tokens")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
