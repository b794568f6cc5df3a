package gptq

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The factorization as it was before it worked in its argument's memory (five n x n
// matrices: L, L^-1, A^-1, chol(A^-1), U), kept as the reference the in-place one must
// equal bit for bit.

func upperCholOfInverseAlloc(a []float64, n int, four bool) ([]float64, error) {
	l, err := choleskyAlloc(a, n, four)
	if err != nil {
		return nil, err
	}
	xt := lowerInverseColumnsAlloc(l, n, four)
	// inv[i][j] = sum_{k >= max(i,j)} (L^-1)[k][i] (L^-1)[k][j]; fill the lower triangle.
	inv := make([]float64, n*n)
	parallelFor(n, func(i int) {
		xi := xt[i*n : (i+1)*n]
		j := 0
		for ; four && j+3 <= i; j += 4 {
			inv[i*n+j], inv[i*n+j+1], inv[i*n+j+2], inv[i*n+j+3] = dot4(xi[i:],
				xt[j*n+i:(j+1)*n], xt[(j+1)*n+i:(j+2)*n], xt[(j+2)*n+i:(j+3)*n], xt[(j+3)*n+i:(j+4)*n])
		}
		for ; j <= i; j++ {
			inv[i*n+j] = dot(xi[i:], xt[j*n+i:(j+1)*n])
		}
	})
	lh, err := choleskyAlloc(inv, n, four)
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

func choleskyAlloc(a []float64, n int, four bool) ([]float64, error) {
	width := 1
	if four {
		width = 4
	}
	l := make([]float64, n*n)
	for j := 0; j < n; j++ {
		lj := l[j*n : j*n+j]
		d := a[j*n+j] - dot(lj, lj)
		if !(d > 0) || math.IsInf(d, 0) {
			return nil, &notPDError{pivot: j, value: d}
		}
		djj := math.Sqrt(d)
		l[j*n+j] = djj
		rows := func(g int) {
			i := j + 1 + width*g
			if four && i+3 < n {
				s0, s1, s2, s3 := dot4(lj, l[i*n:i*n+j], l[(i+1)*n:(i+1)*n+j], l[(i+2)*n:(i+2)*n+j], l[(i+3)*n:(i+3)*n+j])
				l[i*n+j] = (a[i*n+j] - s0) / djj
				l[(i+1)*n+j] = (a[(i+1)*n+j] - s1) / djj
				l[(i+2)*n+j] = (a[(i+2)*n+j] - s2) / djj
				l[(i+3)*n+j] = (a[(i+3)*n+j] - s3) / djj
				return
			}
			for end := min(i+width, n); i < end; i++ {
				l[i*n+j] = (a[i*n+j] - dot(l[i*n:i*n+j], lj)) / djj
			}
		}
		rest := n - j - 1
		if groups := (rest + width - 1) / width; rest*j > 1<<15 {
			parallelFor(groups, rows)
		} else {
			for g := 0; g < groups; g++ {
				rows(g)
			}
		}
	}
	return l, nil
}

func lowerInverseColumnsAlloc(l []float64, n int, four bool) []float64 {
	xt := make([]float64, n*n)
	column := func(c int) {
		x := xt[c*n : (c+1)*n]
		x[c] = 1 / l[c*n+c]
		for i := c + 1; i < n; i++ {
			x[i] = -dot(l[i*n+c:i*n+i], x[c:i]) / l[i*n+i]
		}
	}
	if !four {
		parallelFor(n, column)
		return xt
	}
	parallelFor((n+3)/4, func(g int) {
		c0 := 4 * g
		if c0+3 >= n {
			for c := c0; c < n; c++ {
				column(c)
			}
			return
		}
		x0, x1, x2, x3 := xt[c0*n:(c0+1)*n], xt[(c0+1)*n:(c0+2)*n], xt[(c0+2)*n:(c0+3)*n], xt[(c0+3)*n:(c0+4)*n]
		for k, x := range [4][]float64{x0, x1, x2, x3} {
			c := c0 + k
			x[c] = 1 / l[c*n+c]
			for i := c + 1; i <= c0+3; i++ {
				x[i] = -dot(l[i*n+c:i*n+i], x[c:i]) / l[i*n+i]
			}
		}
		for i := c0 + 4; i < n; i++ {
			li := l[i*n : i*n+i]
			var s0, s1, s2, s3 float64
			s0 += li[c0] * x0[c0]
			s0 += li[c0+1] * x0[c0+1]
			s1 += li[c0+1] * x1[c0+1]
			s0 += li[c0+2] * x0[c0+2]
			s1 += li[c0+2] * x1[c0+2]
			s2 += li[c0+2] * x2[c0+2]
			a := li[c0+3:]
			b0, b1, b2, b3 := x0[c0+3:i], x1[c0+3:i], x2[c0+3:i], x3[c0+3:i]
			for m, v := range a {
				s0 += v * b0[m]
				s1 += v * b1[m]
				s2 += v * b2[m]
				s3 += v * b3[m]
			}
			d := l[i*n+i]
			x0[i], x1[i], x2[i], x3[i] = -s0/d, -s1/d, -s2/d, -s3/d
		}
	})
	return xt
}

// The in-place factorization gives the allocating one's bits, one and four sums at a
// time, at sizes around the 4-row grouping and the parallel threshold; it returns its
// argument's memory.
func TestUpperCholOfInverseInPlaceSameBits(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 33, 130, 257, 403} {
		h := hessianOf(t, correlatedInputs(testutil.Rand(uint64(90+n)), 2*n+8, n), 2*n+8, n)
		a := h.Matrix()
		for i := 0; i < n; i++ {
			a[i*n+i] += 0.01 * a[i*n+i]
		}
		for _, four := range []bool{false, true} {
			want, err := upperCholOfInverseAlloc(a, n, four)
			require.NoError(t, err)
			in := slices.Clone(a)
			got, err := upperCholOfInverseBy(in, n, four)
			require.NoError(t, err)
			require.Same(t, &in[0], &got[0], "the factor is written over the argument")
			for i := range want {
				require.Equal(t, math.Float64bits(want[i]), math.Float64bits(got[i]), fmt.Sprintf("n=%d four=%v entry %d", n, four, i))
			}
		}
	}
}

// The in-place factorization reports a matrix that is not positive definite, as the
// allocating one does.
func TestUpperCholOfInverseInPlaceNotPD(t *testing.T) {
	a := []float64{1, 2, 2, 1}
	_, werr := upperCholOfInverseAlloc(slices.Clone(a), 2, true)
	_, err := upperCholOfInverse(a, 2)
	require.ErrorIs(t, err, ErrNotPositiveDefinite)
	assert.Equal(t, werr.Error(), err.Error())
}
