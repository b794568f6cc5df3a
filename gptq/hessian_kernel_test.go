package gptq

import (
	"math"
	"math/big"
	"runtime"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// dotPerEntry is the definition the blocked kernel follows, written the plain way (the
// loop Add used to run): for every block of hessBlockTokens tokens and every entry i <= j,
// one float64 dot product over the block's tokens in token order, added to sum.
func dotPerEntry(sum []float64, x []float32, m, k, blockTokens int) {
	for t0 := 0; t0 < m; t0 += blockTokens {
		t1 := min(t0+blockTokens, m)
		for i := 0; i < k; i++ {
			for j := i; j < k; j++ {
				var s float64
				for t := t0; t < t1; t++ {
					s += float64(float64(x[t*k+i]) * float64(x[t*k+j]))
				}
				sum[i*k+j] += s
			}
		}
	}
}

// Up to one block of tokens, Add gives the bits of one dot product per entry over the
// batch; longer batches give the bits of the documented sum of per-block dot products.
// Widths that are not multiples of the panel (1, 3, 5, 67) exercise the padding.
func TestHessianAddMatchesDotPerEntry(t *testing.T) {
	r := testutil.Rand(20)
	for _, k := range []int{1, 3, 4, 5, 67, 130} {
		for _, m := range []int{1, 7, 256, 257, 700} {
			x := testutil.Gaussian(r, m*k, 1)
			h, err := NewHessian(k)
			require.NoError(t, err)
			require.NoError(t, h.Add(x, m, k))
			require.NoError(t, h.Add(x, m, k)) // a second batch adds on top
			want := make([]float64, k*k)
			dotPerEntry(want, x, m, k, hessBlockTokens)
			dotPerEntry(want, x, m, k, hessBlockTokens)
			require.Equal(t, want, h.Sum, "k=%d m=%d", k, m)
			if m <= hessBlockTokens {
				whole := make([]float64, k*k)
				dotPerEntry(whole, x, m, k, m)
				dotPerEntry(whole, x, m, k, m)
				require.Equal(t, whole, h.Sum, "k=%d m=%d", k, m)
			}
		}
	}
}

// Against exact sums (float32 products are exact in float64; big.Float adds them without
// rounding), the error of every entry stays within the classic bound of recursive
// summation, m * 2^-53 * sum |x_i x_j|, here with a margin of 2.
func TestHessianAddWithinRoundingOfExact(t *testing.T) {
	const k, m = 19, 1500
	r := testutil.Rand(21)
	x := testutil.Gaussian(r, m*k, 1)
	for i := range x[:m] { // a few large and tiny inputs widen the dynamic range
		x[i*k] *= 1e3
		x[i*k+1] *= 1e-3
	}
	h, _ := NewHessian(k)
	require.NoError(t, h.Add(x, m, k))
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			exact := new(big.Float).SetPrec(2000)
			var absSum float64
			for t := 0; t < m; t++ {
				p := float64(x[t*k+i]) * float64(x[t*k+j])
				exact.Add(exact, big.NewFloat(p))
				absSum += math.Abs(p)
			}
			want, _ := exact.Float64()
			require.InDelta(t, want, h.Sum[i*k+j], 2*m*0x1p-53*absSum, "entry (%d, %d)", i, j)
		}
		for j := 0; j < i; j++ {
			require.Zero(t, h.Sum[i*k+j], "below the diagonal stays unused")
		}
	}
}

// The rows of the triangle are split between workers: the same bits for any count.
func TestHessianAddDeterministicAcrossWorkers(t *testing.T) {
	const k, m = 150, 600
	x := testutil.Gaussian(testutil.Rand(22), m*k, 1)
	run := func(procs int) []float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		h, _ := NewHessian(k)
		require.NoError(t, h.Add(x, m, k))
		return h.Sum
	}
	require.Equal(t, run(1), run(5))
}
