package gptq

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// upperCholOfInverseRef is the factorization before dot4 (four sums at a time): every sum
// one at a time, plain dot's. It is the reference the faster one must equal bit for bit.
func upperCholOfInverseRef(a []float64, n int) ([]float64, error) {
	return upperCholOfInverseBy(a, n, false)
}

// upperCholOfInverse (dot4 in the Cholesky columns and the inverse's product) gives the
// bits of the one-sum-at-a-time reference, at sizes around the 4-row grouping and the
// parallel threshold.
func TestUpperCholOfInverseSameBitsAsReference(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 33, 130, 257, 403} {
		h := hessianOf(t, correlatedInputs(testutil.Rand(uint64(60+n)), 2*n+8, n), 2*n+8, n)
		a := h.Matrix()
		for i := 0; i < n; i++ {
			a[i*n+i] += 0.01 * a[i*n+i] // damped, as GPTQ factors it
		}
		want, err := upperCholOfInverseRef(slices.Clone(a), n)
		require.NoError(t, err)
		got, err := upperCholOfInverse(slices.Clone(a), n)
		require.NoError(t, err)
		for i := range want {
			require.Equal(t, math.Float64bits(want[i]), math.Float64bits(got[i]), fmt.Sprintf("n=%d entry %d", n, i))
		}
	}
}
