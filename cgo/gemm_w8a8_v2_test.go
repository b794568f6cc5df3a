//go:build cuda

package cgo

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Shapes for the small-M streaming kernel (gemm_w8a8_v2.cu): K below one 64-wide step (48),
// K not a multiple of 64 (1040 = 16 steps + 16), N not a multiple of the 64-output block
// (72, 200), split-K (256x2048, 128x8192: more than one 4096-wide A slice), one block (128x256).
var w8V2Shapes = []nk{{128, 256}, {256, 2048}, {72, 48}, {200, 1040}, {128, 8192}, {320, 1024}}

// 17 and up run V1's tiles with the split-K partials reduced by a separate kernel, from 512
// on the 128 x 256 tiles (520: a partial row tile).
var w8V2Ms = []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 129, 300, 520}

// Int32 accumulators of each variant, called by name, bit-exact with quant.GemmI8.
func TestGemmI8VariantsExactVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, v := range []W8A8Variant{W8A8V2, W8A8V1} {
		for si, s := range w8V2Shapes {
			w := quantize8(t, s.N, s.K, quant.PerChannel, uint64(500+si))
			lv, err := int8Levels(w)
			require.NoError(t, err)
			for _, M := range w8V2Ms {
				t.Run(fmt.Sprintf("v%d_M%d_N%d_K%d", v, M, s.N, s.K), func(t *testing.T) {
					a := randInt8(uint64(7000*M+si), M*s.K)
					want := quant.GemmI8(a, lv, M, s.N, s.K)
					got, err := g.GemmI8Variant(v, a, M, w)
					require.NoError(t, err)
					bad := 0
					for i := range want {
						if got[i] != want[i] {
							if bad < 5 {
								t.Errorf("acc[m=%d, n=%d] = %d, want %d", i/s.N, i%s.N, got[i], want[i])
							}
							bad++
						}
					}
					require.Zero(t, bad, "variant %d: %d of %d int32 accumulators differ from quant.GemmI8", v, bad, len(want))
				})
			}
		}
	}
}

// Extreme levels through V2: -127 x -128 over K = 8192 (acc = 133169152; split K at M <= 16,
// split K reduced by the separate kernel at 300 and, with the 128 x 256 tiles, at 520).
func TestGemmI8V2Extremes(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 64, 8192
	w := quantize8(t, N, K, quant.PerChannel, 9)
	for i := range w.Data {
		w.Data[i] = 0x80 // -128
	}
	for _, M := range []int{1, 16, 300, 520} {
		a := make([]int8, M*K)
		for i := range a {
			a[i] = -127
		}
		got, err := g.GemmI8Variant(W8A8V2, a, M, w)
		require.NoError(t, err)
		for i, v := range got {
			require.Equal(t, int32(127*128*K), v, "M=%d element %d", M, i)
		}
	}
}

// F16 outputs of V2 equal f16(quant.GemmW8A8) within the v1 bound (<= 1 ulp; expected 0),
// and equal V1's outputs bit for bit (same exact accumulators, same epilogue).
func TestGemmW8A8VariantsVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for si, s := range w8V2Shapes {
		for _, gran := range []quant.Granularity{quant.PerChannel, quant.PerTensor} {
			w := quantize8(t, s.N, s.K, gran, uint64(600+si))
			for _, M := range w8V2Ms {
				t.Run(fmt.Sprintf("M%d_N%d_K%d_%s", M, s.N, s.K, gran), func(t *testing.T) {
					x := f16Values(uint64(4000+M+si), M*s.K, 1)
					aq, as := quant.QuantizeActivationsPerToken(x, M, s.K)
					var bias []float32
					if M%2 == 1 {
						bias = testutil.Gaussian(testutil.Rand(uint64(66+si)), s.N, 0.5)
					}
					ref, err := quant.GemmW8A8(aq, as, M, w, bias)
					require.NoError(t, err)
					want := tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(ref))
					got, err := g.GemmW8A8Variant(W8A8V2, aq, as, M, w, bias)
					require.NoError(t, err)
					require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
					v1, err := g.GemmW8A8Variant(W8A8V1, aq, as, M, w, bias)
					require.NoError(t, err)
					exact, worst, worstAt := 0, 0, 0
					for i := range want {
						d := f16ULPDiff(got[i], want[i])
						if d == 0 {
							exact++
						}
						if d > worst {
							worst, worstAt = d, i
						}
					}
					t.Logf("%d/%d outputs bit-exact with f16(quant.GemmW8A8), worst %d ulp", exact, len(want), worst)
					require.LessOrEqual(t, worst, 1, "output [m=%d, n=%d] = %g, reference %g: %d F16 ulps apart", worstAt/s.N, worstAt%s.N, got[worstAt], want[worstAt], worst)
					for i := range v1 {
						require.Equal(t, v1[i], got[i], "V2 output [m=%d, n=%d] differs from V1", i/s.N, i%s.N)
					}
				})
			}
		}
	}
}

// The dispatch chosen from the second H100 run (cgo/gemm_dispatch.go): V2 for 17..511 only.
func TestW8A8Dispatch(t *testing.T) {
	want := map[int]W8A8Variant{1: W8A8V1, 16: W8A8V1, 17: W8A8V2, 128: W8A8V2, 511: W8A8V2, 512: W8A8V1, 1024: W8A8V1}
	for M, v := range want {
		require.Equal(t, v, w8a8VariantFor(M), "M=%d", M)
	}
}
