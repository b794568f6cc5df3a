package quant

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// plainGemmI8 is the definition: one int32 running sum per output over k in order,
// wrapping on overflow.
func plainGemmI8(a, b []int8, M, N, K int) []int32 {
	c := make([]int32, M*N)
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			var acc int32
			for k := 0; k < K; k++ {
				acc += int32(a[m*K+k]) * int32(b[n*K+k])
			}
			c[m*N+n] = acc
		}
	}
	return c
}

// The packed kernel gives the plain loop's bits for token counts around its groups of
// nine (three per 64-bit lane set), widths around its 63-input chunks, and operands at the
// extremes (-128 everywhere makes every lane sum its largest, 63 * 2^14).
func TestGemmI8MatchesPlainLoop(t *testing.T) {
	r := testutil.Rand(30)
	for _, M := range []int{1, 2, 3, 4, 8, 9, 10, 17, 19} {
		for _, K := range []int{1, 62, 63, 64, 127, 200} {
			const N = 3
			a, b := make([]int8, M*K), make([]int8, N*K)
			for i := range a {
				a[i] = int8(r.IntN(256) - 128)
			}
			for i := range b {
				b[i] = int8(r.IntN(256) - 128)
			}
			for k := 0; k < K; k++ { // token 0 and row 0 all -128; token 1 all 127
				a[k], b[k] = -128, -128
				if M > 1 {
					a[K+k] = 127
				}
			}
			require.Equal(t, plainGemmI8(a, b, M, N, K), GemmI8(a, b, M, N, K), "M=%d K=%d", M, K)
		}
	}
}

// Past 2^17 inputs an int32 sum of 2^14 products overflows: the kernel wraps exactly as the
// plain int32 loop (and the GPU's accumulators) do.
func TestGemmI8WrapsLikeInt32(t *testing.T) {
	const M, N, K = 4, 2, 1<<17 + 300
	a, b := make([]int8, M*K), make([]int8, N*K)
	for i := range a {
		a[i] = -128
	}
	for i := range b {
		b[i] = int8(-128 + 255*(i%2)) // -128, 127, ...
	}
	for k := 0; k < K; k++ {
		b[k] = -128 // row 0: every product 2^14, K * 2^14 > 2^31
	}
	got := GemmI8(a, b, M, N, K)
	require.Equal(t, plainGemmI8(a, b, M, N, K), got)
	require.Equal(t, int32(int64(K)<<14-1<<32), got[0], "K * 2^14 wrapped once")
}

// The activation quantizer's rounding shortcut gives the levels of the definition
// clamp(RoundHalfEven(v/scale), -127, 127) (NaN -> 0) on ties, near-ties, the clamp edges
// and random values.
func TestQuantizeActRowMatchesDefinition(t *testing.T) {
	r := testutil.Rand(31)
	var src []float32
	for k := -130; k <= 130; k++ {
		tie := float32(k) + 0.5
		src = append(src, tie, -tie, float32(k), tie+1e-4, tie-1e-4)
	}
	src = append(src, 3e38, -3e38, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-149)
	for i := 0; i < 5000; i++ {
		src = append(src, float32(r.NormFloat64()*60))
	}
	for _, amax := range []float32{127, 63.5, 1, 1000, 0} {
		dst := make([]int8, len(src))
		scale := quantizeActRow(src, amax, dst)
		for i, v := range src {
			want := RoundHalfEven(v / scale)
			switch {
			case want > 127:
				want = 127
			case want < -127:
				want = -127
			case want != want:
				want = 0
			}
			require.Equal(t, int8(want), dst[i], "v=%v amax=%v", v, amax)
		}
	}
}

// The Into variants write the same bits into the caller's buffer and check its length.
func TestGemmIntoVariants(t *testing.T) {
	const M, N, K = 7, 33, 96
	x, w, bias := gemmOperands(32, M, N, K)
	aq, as := QuantizeActivationsPerToken(x, M, K)
	q8, err := Quantize("w8", w, N, K, Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, SearchOptions{})
	require.NoError(t, err)
	q4, err := Quantize("w4", w, N, K, Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}, SearchOptions{})
	require.NoError(t, err)

	want8, err := GemmW8A8(aq, as, M, q8, bias)
	require.NoError(t, err)
	out := make([]float32, M*N)
	require.NoError(t, GemmW8A8Into(out, aq, as, M, q8, bias))
	require.Equal(t, want8, out)
	require.ErrorContains(t, GemmW8A8Into(out[:5], aq, as, M, q8, bias), `tensor "w8": output has 5 values for 7 tokens x 33 outputs`)

	want4, err := GemmW4A16(x, M, q4, bias)
	require.NoError(t, err)
	require.NoError(t, GemmW4A16Into(out, x, M, q4, bias))
	require.Equal(t, want4, out)
	require.ErrorContains(t, GemmW4A16Into(out[:5], x, M, q4, bias), `tensor "w4": output has 5 values`)
}
