package gptq

import (
	"fmt"
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

// hessianOf is the Hessian of m tokens x of width k.
func hessianOf(t testing.TB, x []float32, m, k int) *Hessian {
	t.Helper()
	h, err := NewHessian(k)
	require.NoError(t, err)
	require.NoError(t, h.Add(x, m, k))
	return h
}

// driftOf is the drift of m tokens x of width k from their references ref.
func driftOf(t testing.TB, ref, x []float32, m, k int) *Drift {
	t.Helper()
	d, err := NewDrift(k)
	require.NoError(t, err)
	require.NoError(t, d.Add(ref, x, m, k))
	return d
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

// schemesOf is the weight schemes of recipe names in quant.ParseRecipe's grammar: "w4g32"
// (4-bit, groups of 32, symmetric), "w8g64a" (asymmetric), "w4" (per channel), "w4ta"
// (per tensor, asymmetric).
func schemesOf(names ...string) []quant.Scheme {
	out := make([]quant.Scheme, len(names))
	for i, n := range names {
		r, err := quant.ParseRecipe(n)
		if err != nil || r.Full {
			panic(fmt.Sprintf("test scheme %q: %v", n, err))
		}
		out[i] = r.Weight
	}
	return out
}

// schemes are the 4- and 8-bit schemes the tests run.
func schemes() []quant.Scheme {
	return schemesOf("w4g32", "w4g32a", "w4g128", "w4g16a", "w4", "w8", "w8g64a", "w4ta")
}

// otherWidths are the weight-only widths besides 4 and 8 bits.
func otherWidths() []quant.Scheme {
	return schemesOf("w3g32", "w3g32a", "w5g32a", "w5", "w6g32a", "w6", "w7g64")
}

// allWidthSchemes is schemes() followed by otherWidths().
func allWidthSchemes() []quant.Scheme { return append(schemes(), otherWidths()...) }

func randWeights(seed uint64, n int) []float32 {
	return testutil.Gaussian(testutil.Rand(seed), n, 0.05)
}
