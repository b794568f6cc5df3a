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
func cholesky(a []float64, n int) ([]float64, error) { return choleskyBy(a, n, true) }

// choleskyBy is cholesky with the rows below each pivot four at a time (dot4: four
// independent sums, each dot's bits) when four, else one at a time: the reference the
// tests and benchmarks compare the four-at-a-time factorization with.
func choleskyBy(a []float64, n int, four bool) ([]float64, error) {
	l := make([]float64, n*n)
	for i := 0; i < n; i++ {
		copy(l[i*n:i*n+i+1], a[i*n:i*n+i+1])
	}
	if err := choleskyInPlace(l, n, four); err != nil {
		return nil, err
	}
	return l, nil
}

// choleskyInPlace replaces the lower triangle (with the diagonal) of a by its Cholesky
// factor L; the strict upper triangle is neither read nor written. Each entry of L is
// computed from a's entry at the same place just before it is overwritten, so the bits
// are those of a separate L's. On an error a's lower triangle is partly overwritten.
func choleskyInPlace(a []float64, n int, four bool) error {
	width := 1
	if four {
		width = 4
	}
	for j := 0; j < n; j++ {
		lj := a[j*n : j*n+j]
		d := a[j*n+j] - dot(lj, lj)
		if !(d > 0) || math.IsInf(d, 0) {
			return &notPDError{pivot: j, value: d}
		}
		djj := math.Sqrt(d)
		a[j*n+j] = djj
		rows := func(g int) {
			i := j + 1 + width*g
			if four && i+3 < n {
				s0, s1, s2, s3 := dot4(lj, a[i*n:i*n+j], a[(i+1)*n:(i+1)*n+j], a[(i+2)*n:(i+2)*n+j], a[(i+3)*n:(i+3)*n+j])
				a[i*n+j] = (a[i*n+j] - s0) / djj
				a[(i+1)*n+j] = (a[(i+1)*n+j] - s1) / djj
				a[(i+2)*n+j] = (a[(i+2)*n+j] - s2) / djj
				a[(i+3)*n+j] = (a[(i+3)*n+j] - s3) / djj
				return
			}
			for end := min(i+width, n); i < end; i++ {
				a[i*n+j] = (a[i*n+j] - dot(a[i*n:i*n+j], lj)) / djj
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
	return nil
}

// factor is the factorization GPTQ runs (upperCholOfInverse; benchmarks swap in the
// one-sum-at-a-time reference as their baseline).
var factor = upperCholOfInverse

// upperCholOfInverse returns U (upper triangular, row-major) with U^T U = A^-1 for the
// symmetric positive definite A, the factor GPTQ propagates errors with: row i of U,
// divided by U[i,i], says how an error in column i moves the later columns. It computes
// L = chol(A), A^-1 = L^-T L^-1, and U = chol(A^-1)^T, all in float64, in a's memory: a
// (only its lower triangle is read) is overwritten and returned as U, so a layer as wide
// as an MLP's down projection costs one n x n matrix rather than five.
func upperCholOfInverse(a []float64, n int) ([]float64, error) {
	return upperCholOfInverseBy(a, n, true)
}

// upperCholOfInverseBy is upperCholOfInverse with its sums four at a time (dot4 and the
// four-column substitution) when four, else one at a time (choleskyBy's reference).
//
// The steps share a's memory as follows: L in the lower triangle (its diagonal also kept
// aside); L^-1 by columns into the upper triangle with the diagonal (column c of L^-1 is
// row c from the diagonal on), reading only L's strict lower triangle; A^-1's lower
// triangle with the diagonal from those rows (entry (i, j), j <= i, reads rows i and j
// from column i on, and row i's diagonal is the last entry its task writes); chol(A^-1) in
// place in the lower triangle; U its transpose, zeros below the diagonal.
func upperCholOfInverseBy(a []float64, n int, four bool) ([]float64, error) {
	if err := choleskyInPlace(a, n, four); err != nil {
		return nil, err
	}
	diag := make([]float64, n)
	for i := range diag {
		diag[i] = a[i*n+i]
	}
	lowerInverseColumns(a, diag, n, four)
	// inv[i][j] = sum_{k >= max(i,j)} (L^-1)[k][i] (L^-1)[k][j]; fill the lower triangle.
	parallelFor(n, func(i int) {
		xi := a[i*n : (i+1)*n]
		j := 0
		for ; four && j+3 <= i; j += 4 {
			a[i*n+j], a[i*n+j+1], a[i*n+j+2], a[i*n+j+3] = dot4(xi[i:],
				a[j*n+i:(j+1)*n], a[(j+1)*n+i:(j+2)*n], a[(j+2)*n+i:(j+3)*n], a[(j+3)*n+i:(j+4)*n])
		}
		for ; j <= i; j++ {
			a[i*n+j] = dot(xi[i:], a[j*n+i:(j+1)*n])
		}
	})
	if err := choleskyInPlace(a, n, four); err != nil {
		return nil, fmt.Errorf("inverse: %w", err)
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			a[i*n+j], a[j*n+i] = a[j*n+i], 0
		}
	}
	return a, nil
}

// lowerInverseColumns writes L^-1 by columns into the upper triangle (with the diagonal)
// of l, whose strict lower triangle holds L and diag L's diagonal: l[c*n+k] = (L^-1)[k][c]
// for k >= c, column c stored contiguously, each entry by forward substitution. With four,
// four columns at a time: below row c0+3 their sums run side by side (each with its own
// leading terms first, so every sum adds in index order as the one-column dot does).
func lowerInverseColumns(l, diag []float64, n int, four bool) {
	column := func(c int) {
		x := l[c*n : (c+1)*n]
		x[c] = 1 / diag[c]
		for i := c + 1; i < n; i++ {
			x[i] = -dot(l[i*n+c:i*n+i], x[c:i]) / diag[i]
		}
	}
	if !four {
		parallelFor(n, column)
		return
	}
	parallelFor((n+3)/4, func(g int) {
		c0 := 4 * g
		if c0+3 >= n {
			for c := c0; c < n; c++ {
				column(c)
			}
			return
		}
		x0, x1, x2, x3 := l[c0*n:(c0+1)*n], l[(c0+1)*n:(c0+2)*n], l[(c0+2)*n:(c0+3)*n], l[(c0+3)*n:(c0+4)*n]
		for k, x := range [4][]float64{x0, x1, x2, x3} {
			c := c0 + k
			x[c] = 1 / diag[c]
			for i := c + 1; i <= c0+3; i++ {
				x[i] = -dot(l[i*n+c:i*n+i], x[c:i]) / diag[i]
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
			d := diag[i]
			x0[i], x1[i], x2[i], x3[i] = -s0/d, -s1/d, -s2/d, -s3/d
		}
	})
}

// dot4 returns dot(a, b0), ..., dot(a, b3) (each b at least as long as a), every sum in
// index order as dot adds it: the four chains are independent, so they overlap in the
// FPU where one dot waits on each addition, and the bits are dot's.
func dot4(a, b0, b1, b2, b3 []float64) (s0, s1, s2, s3 float64) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	for i, v := range a {
		s0 += v * b0[i]
		s1 += v * b1[i]
		s2 += v * b2[i]
		s3 += v * b3[i]
	}
	return s0, s1, s2, s3
}

func dot(a, b []float64) float64 {
	var s float64
	b = b[:len(a)]
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
