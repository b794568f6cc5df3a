package quant

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// Fixtures shared by the package's tests.

// allSchemes is every bit width (3 to 8), symmetry and granularity (groups of 32).
func allSchemes() []Scheme {
	var out []Scheme
	for bits := MinBits; bits <= MaxBits; bits++ {
		for _, sym := range []bool{true, false} {
			for _, g := range []Granularity{PerTensor, PerChannel, PerGroup} {
				s := Scheme{Bits: bits, Symmetric: sym, Granularity: g}
				if g == PerGroup {
					s.GroupSize = 32
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// testMatrix is rows x cols of Gaussian rows, a heavy-tailed row, an all-positive row and an
// all-negative row (asymmetric ranges that must be widened to contain 0).
func testMatrix(seed uint64, rows, cols int) []float32 {
	r := testutil.Rand(seed)
	w := testutil.Gaussian(r, rows*cols, 0.02)
	copy(w[cols:2*cols], testutil.StudentT(r, cols, 3))
	for c := 0; c < cols; c++ {
		w[2*cols+c] = float32(math.Abs(float64(w[2*cols+c]))) + 0.5
		w[3*cols+c] = -float32(math.Abs(float64(w[3*cols+c]))) - 0.25
	}
	return w
}

// unitParams are scales of 1 (and zero points of 0 when asymmetric) for a rows x cols
// matrix under s: parameters under which only the values themselves can be refused.
func unitParams(t *testing.T, s Scheme, rows, cols int) ([]float32, []int32) {
	t.Helper()
	l, err := NewLayout(s, rows, cols)
	require.NoError(t, err)
	scales := make([]float32, l.NParams())
	for i := range scales {
		scales[i] = 1
	}
	var zeros []int32
	if !s.Symmetric {
		zeros = make([]int32, l.NParams())
	}
	return scales, zeros
}

// gemmOperands draws, in this order from one generator, activations x [M, K] (standard
// normal), weights w [N, K] (sigma 0.05) and a bias [N] (sigma 0.1).
func gemmOperands(seed uint64, M, N, K int) (x, w, bias []float32) {
	r := testutil.Rand(seed)
	return testutil.Gaussian(r, M*K, 1), testutil.Gaussian(r, N*K, 0.05), testutil.Gaussian(r, N, 0.1)
}

// naiveF64 is C = A * B^T (+ bias[n] on every row, when bias is not nil) in float64, the
// independent oracle; absSum is sum |a*b| (+ |bias[n]|), for requireCloseGemm's bound.
func naiveF64(a, b, bias []float32, M, N, K int) (c, absSum []float64) {
	c = make([]float64, M*N)
	absSum = make([]float64, M*N)
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			for k := 0; k < K; k++ {
				p := float64(a[m*K+k]) * float64(b[n*K+k])
				c[m*N+n] += p
				absSum[m*N+n] += math.Abs(p)
			}
			if bias != nil {
				c[m*N+n] += float64(bias[n])
				absSum[m*N+n] += math.Abs(float64(bias[n]))
			}
		}
	}
	return c, absSum
}

// requireCloseGemm checks got against the float64 result within the float32 summation
// bound K*2^-24*sum|a*b| (times 2 for slack).
func requireCloseGemm(t *testing.T, got []float32, want, absSum []float64, K int) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		tol := 2*float64(K)*0x1p-24*absSum[i] + 1e-30
		require.InDelta(t, want[i], float64(got[i]), tol, "element %d", i)
	}
}
