package gptq

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// The factorizations before dot4 (four sums at a time), kept as the reference the faster
// ones must equal bit for bit.
func choleskyRef(a []float64, n int) ([]float64, error) {
	l := make([]float64, n*n)
	for j := 0; j < n; j++ {
		lj := l[j*n : j*n+j]
		d := a[j*n+j] - dot(lj, lj)
		if !(d > 0) || math.IsInf(d, 0) {
			return nil, &notPDError{pivot: j, value: d}
		}
		djj := math.Sqrt(d)
		l[j*n+j] = djj
		col := func(i int) {
			l[i*n+j] = (a[i*n+j] - dot(l[i*n:i*n+j], lj)) / djj
		}
		if rest := n - j - 1; rest*j > 1<<15 {
			parallelFor(rest, func(r int) { col(j + 1 + r) })
		} else {
			for i := j + 1; i < n; i++ {
				col(i)
			}
		}
	}
	return l, nil
}

// upperCholOfInverse returns U (upper triangular, row-major) with U^T U = A^-1 for the
// symmetric positive definite A, the factor GPTQ propagates errors with: row i of U,
// divided by U[i,i], says how an error in column i moves the later columns. It computes
// L = chol(A), A^-1 = L^-T L^-1, and U = chol(A^-1)^T, all in float64.
func upperCholOfInverseRef(a []float64, n int) ([]float64, error) {
	l, err := choleskyRef(a, n)
	if err != nil {
		return nil, err
	}
	// xt[c*n+k] = (L^-1)[k][c]: column c of L^-1 stored contiguously (nonzero for k >= c).
	xt := make([]float64, n*n)
	parallelFor(n, func(c int) {
		x := xt[c*n : (c+1)*n]
		x[c] = 1 / l[c*n+c]
		for i := c + 1; i < n; i++ {
			x[i] = -dot(l[i*n+c:i*n+i], x[c:i]) / l[i*n+i]
		}
	})
	// inv[i][j] = sum_{k >= max(i,j)} (L^-1)[k][i] (L^-1)[k][j]; fill the lower triangle.
	inv := make([]float64, n*n)
	parallelFor(n, func(i int) {
		xi := xt[i*n : (i+1)*n]
		for j := 0; j <= i; j++ {
			inv[i*n+j] = dot(xi[i:], xt[j*n+i:(j+1)*n])
		}
	})
	lh, err := choleskyRef(inv, n)
	if err != nil {
		return nil, fmt.Errorf("inverse: %w", err)
	}
	u := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			u[i*n+j] = lh[j*n+i]
		}
	}
	return u, nil
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
		want, err := upperCholOfInverseRef(a, n)
		require.NoError(t, err)
		got, err := upperCholOfInverse(a, n)
		require.NoError(t, err)
		for i := range want {
			require.Equal(t, math.Float64bits(want[i]), math.Float64bits(got[i]), fmt.Sprintf("n=%d entry %d", n, i))
		}
	}
}
