package gptq

import (
	"errors"
	"fmt"
	"math"
)

// ErrNotPositiveDefinite is wrapped by factorization errors that more damping may cure.
var ErrNotPositiveDefinite = errors.New("matrix is not positive definite")

// notPDError reports the pivot where a Cholesky factorization met a non-positive value.
type notPDError struct {
	pivot int
	value float64
}

func (e *notPDError) Error() string {
	return fmt.Sprintf("%v (pivot %d is %.3g)", ErrNotPositiveDefinite, e.pivot, e.value)
}

func (e *notPDError) Unwrap() error { return ErrNotPositiveDefinite }

// cholesky factors the symmetric positive definite [n, n] matrix a (row-major, only the
// lower triangle read) as L L^T and returns L (lower, row-major, zeros above). Every
// entry is one fixed-order float64 dot product, so the result does not depend on the
// number of workers.
func cholesky(a []float64, n int) ([]float64, error) {
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
func upperCholOfInverse(a []float64, n int) ([]float64, error) {
	l, err := cholesky(a, n)
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
	lh, err := cholesky(inv, n)
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

func dot(a, b []float64) float64 {
	var s float64
	b = b[:len(a)]
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
