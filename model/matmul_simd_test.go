package model

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// The packed kernel gives matmulTile's bits on every shape: rows and columns that are not
// multiples of the kernel's 4x16 block or of the work units, and values that round.
func TestMatmulPackedBitsEqualScalar(t *testing.T) {
	if !hasGemmKernel {
		t.Skip("no AVX2 on this CPU: matmulT is the scalar path only")
	}
	r := testutil.Rand(7)
	for _, s := range [][3]int{{4, 16, 1}, {5, 17, 3}, {64, 32, 64}, {67, 45, 33}, {130, 100, 257}, {256, 172, 64}, {7, 16, 1000}} {
		M, N, K := s[0], s[1], s[2]
		require.True(t, usePacked(M, N, K), "%v takes the packed path", s)
		x, w := testutil.Gaussian(r, M*K, 1), testutil.Gaussian(r, N*K, 3)
		x[0], w[len(w)-1] = float32(math.Copysign(0, -1)), 1e-30 // a negative zero and a product that underflows
		got, want := make([]float32, M*N), make([]float32, M*N)
		matmulT(got, x, w, M, N, K)
		matmulScalar(want, x, w, M, N, K)
		for i := range want {
			require.Equal(t, math.Float32bits(want[i]), math.Float32bits(got[i]), "shape %v, output %d: %g vs %g", s, i, got[i], want[i])
		}
		// And the naive one-output-at-a-time loop (independent of both).
		naive := make([]float32, M*N)
		naiveMatmulT(naive, x, w, M, N, K)
		require.Equal(t, naive, got, "shape %v", s)
	}
}

func TestMatmulSmallShapesStayScalar(t *testing.T) {
	require.False(t, usePacked(3, 64, 64), "fewer than four rows")
	require.False(t, usePacked(64, 15, 64), "fewer than one panel of outputs")
}
