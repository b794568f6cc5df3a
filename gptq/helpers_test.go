package gptq

import (
	"math/rand/v2"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// correlatedInputs returns m tokens x = A z (z standard normal, A a random [k, k] mixing
// matrix with a strong shared component), the kind of correlated activations GPTQ
// exploits, plus per-input scales spread over two orders of magnitude.
func correlatedInputs(r *rand.Rand, m, k int) []float32 {
	a := make([]float64, k*k)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	shared := make([]float64, k)
	for i := range shared {
		shared[i] = 3 * r.NormFloat64()
	}
	x := make([]float32, m*k)
	z := make([]float64, k)
	for t := 0; t < m; t++ {
		for i := range z {
			z[i] = r.NormFloat64()
		}
		common := r.NormFloat64()
		for i := 0; i < k; i++ {
			s := shared[i] * common
			for j := 0; j < k; j++ {
				s += a[i*k+j] * z[j] / 4
			}
			x[t*k+i] = float32(s * (0.1 + float64(i%7)))
		}
	}
	return x
}

func hessianOf(t testing.TB, x []float32, m, k int) *Hessian {
	h, err := NewHessian(k)
	require.NoError(t, err)
	require.NoError(t, h.Add(x, m, k))
	return h
}

// identityHessian is H = I (one token's worth).
func identityHessian(t testing.TB, k int) *Hessian {
	m := make([]float64, k*k)
	for i := 0; i < k; i++ {
		m[i*k+i] = 1
	}
	h, err := FromMatrix(k, 1, m)
	require.NoError(t, err)
	return h
}

// rtnLevels is round-to-nearest with min/max group ranges computed here, independently
// of the package: every group's min and max, ComputeParams, QuantizeValue.
func rtnLevels(s quant.Scheme, w []float32, rows, cols int) []int32 {
	gs := cols
	if s.Granularity == quant.PerGroup {
		gs = s.GroupSize
	}
	out := make([]int32, len(w))
	var tsc float32
	var tz int32
	if s.Granularity == quant.PerTensor {
		lo, hi := w[0], w[0]
		for _, v := range w {
			lo, hi = min(lo, v), max(hi, v)
		}
		tsc, tz = s.ComputeParams(lo, hi)
	}
	for r := 0; r < rows; r++ {
		for g0 := 0; g0 < cols; g0 += gs {
			grp := w[r*cols+g0 : r*cols+g0+gs]
			lo, hi := grp[0], grp[0]
			for _, v := range grp {
				lo, hi = min(lo, v), max(hi, v)
			}
			sc, z := s.ComputeParams(lo, hi)
			if s.Granularity == quant.PerTensor {
				sc, z = tsc, tz
			}
			for j, v := range grp {
				out[r*cols+g0+j] = s.QuantizeValue(v, sc, z)
			}
		}
	}
	return out
}

func schemes() []quant.Scheme {
	return []quant.Scheme{
		{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128},
		{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 16},
		{Bits: 4, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 8, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 8, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 64},
		{Bits: 4, Symmetric: false, Granularity: quant.PerTensor},
	}
}

// otherWidths are the weight-only widths besides 4 and 8 bits.
func otherWidths() []quant.Scheme {
	return []quant.Scheme{
		{Bits: 3, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 3, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 5, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 5, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 6, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 6, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 7, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 64},
	}
}

// allWidthSchemes is schemes() followed by otherWidths().
func allWidthSchemes() []quant.Scheme { return append(schemes(), otherWidths()...) }

func randWeights(seed uint64, n int) []float32 {
	return testutil.Gaussian(testutil.Rand(seed), n, 0.05)
}
