package gptq

import (
	"slices"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// U^T U must be the inverse of A: check (U^T U) A = I.
func TestUpperCholOfInverse(t *testing.T) {
	const n = 70
	x := correlatedInputs(testutil.Rand(40), 200, n)
	a := hessianOf(t, x, 200, n).Matrix()
	u, err := upperCholOfInverse(slices.Clone(a), n) // overwrites its argument
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		for j := 0; j < i; j++ {
			require.Zero(t, u[i*n+j], "U must be upper triangular")
		}
		require.Greater(t, u[i*n+i], 0.0)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s float64 // row i of U^T U times column j of A
			for k := 0; k < n; k++ {
				var utu float64
				for m := 0; m <= min(i, k); m++ {
					utu += u[m*n+i] * u[m*n+k]
				}
				s += utu * a[k*n+j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			assert.InDelta(t, want, s, 1e-8, "(%d, %d)", i, j)
		}
	}
}

func TestCholeskyRejectsIndefinite(t *testing.T) {
	_, err := cholesky([]float64{1, 2, 2, 1}, 2)
	assert.ErrorContains(t, err, "pivot 1")
	l, err := cholesky([]float64{4, 2, 2, 5}, 2) // hand: L = [[2, 0], [1, 2]]
	require.NoError(t, err)
	assert.Equal(t, []float64{2, 0, 1, 2}, l)
}
