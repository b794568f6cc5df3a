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

// Shapes for both W8A8 reductions: K below one 128-wide step (48), K not a multiple of the
// step (1040), N not a multiple of the 128-column tile (72, 200), split-K (256x2048,
// 128x8192), one block (128x256).
var w8ReduceShapes = []nk{{128, 256}, {256, 2048}, {72, 48}, {200, 1040}, {128, 8192}, {320, 1024}}

// M around the 16/64/128-row tiles; 300 and 520 cross the dispatch table's 511.
var w8ReduceMs = []int{1, 7, 16, 17, 129, 300, 520}

// Int32 accumulators of both reductions, called by name, bit-exact with quant.GemmI8.
func TestGemmI8KernelsExactVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, k := range Kernels(OpW8A8) {
		if k == WgmmaTMA && !W8A8WgmmaAvailable(g.dev) {
			t.Logf("kernel %s skipped: %s", k, wgmmaMissing)
			continue
		}
		for si, s := range w8ReduceShapes {
			w := quantize8(t, s.N, s.K, quant.PerChannel, uint64(500+si))
			lv, err := int8Levels(w)
			require.NoError(t, err)
			for _, M := range w8ReduceMs {
				t.Run(fmt.Sprintf("%s_M%d_N%d_K%d", k, M, s.N, s.K), func(t *testing.T) {
					a := randInt8(uint64(7000*M+si), M*s.K)
					want := quant.GemmI8(a, lv, M, s.N, s.K)
					got, err := g.GemmI8With(k, a, M, w)
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
					require.Zero(t, bad, "kernel %s: %d of %d int32 accumulators differ from quant.GemmI8", k, bad, len(want))
				})
			}
		}
	}
}

// Extreme levels through the reduce kernel: -127 x -128 over K = 8192 (acc = 133169152).
func TestGemmI8ReduceKernelExtremes(t *testing.T) {
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
		got, err := g.GemmI8With(TiledReduceKernel, a, M, w)
		require.NoError(t, err)
		for i, v := range got {
			require.Equal(t, int32(127*128*K), v, "M=%d element %d", M, i)
		}
	}
}

// F16 outputs of the reduce kernel equal f16(quant.GemmW8A8) within the bound of the
// dispatch test (<= 1 ulp; expected 0) and the last block's outputs bit for bit (the same
// exact accumulators, the same epilogue): the dispatch may take either.
func TestGemmW8A8ReduceKernelEqualsLastBlock(t *testing.T) {
	g := gemmTestDevice(t)
	for si, s := range w8ReduceShapes {
		for _, gran := range []quant.Granularity{quant.PerChannel, quant.PerTensor} {
			w := quantize8(t, s.N, s.K, gran, uint64(600+si))
			for _, M := range w8ReduceMs {
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
					got, err := g.GemmW8A8With(TiledReduceKernel, aq, as, M, w, bias)
					require.NoError(t, err)
					require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
					last, err := g.GemmW8A8With(TiledLastBlock, aq, as, M, w, bias)
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
					for i := range last {
						require.Equal(t, last[i], got[i], "reduce-kernel output [m=%d, n=%d] differs from the last block's", i/s.N, i%s.N)
					}
				})
			}
		}
	}
}

// An unknown W8A8 kernel name is an error naming the kernels there are.
func TestGemmW8A8UnknownKernel(t *testing.T) {
	g := gemmTestDevice(t)
	w := quantize8(t, 64, 64, quant.PerChannel, 3)
	_, err := g.GemmI8With("v3", make([]int8, 64), 1, w)
	require.ErrorContains(t, err, "unknown kernel")
	require.ErrorContains(t, err, string(TiledReduceKernel))
}

const wgmmaMissing = "the sm_90a kernel is not built into this library (nvcc < 12 or AUTOQ_SM90A=OFF) or the device is not compute capability 9.0"

// The sm_90a wgmma/TMA kernel: F16 outputs against f16(quant.GemmW8A8) (the same epilogue as
// the mma.sync kernels, so bit-exact is expected; the test allows 1 ulp and logs the count of
// exact matches, which scripts/gpu-check.sh sums), the mma.sync kernel's outputs bit for bit,
// over M from 1 to 1024 and shapes with N and K edges (TMA zero-fills past them).
func TestGemmW8A8WgmmaVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	if !W8A8WgmmaAvailable(g.dev) {
		t.Skipf("wgmma-tma: %s", wgmmaMissing)
	}
	shapes := append([]nk{{1024, 2048}}, w8ReduceShapes...)
	total, exactAll := 0, 0
	for si, s := range shapes {
		w := quantize8(t, s.N, s.K, quant.PerChannel, uint64(800+si))
		for _, M := range []int{1, 17, 128, 300, 1024} {
			if M*s.N*s.K > 1<<31 {
				continue // the CPU reference's time
			}
			x := f16Values(uint64(8000+M+si), M*s.K, 1)
			aq, as := quant.QuantizeActivationsPerToken(x, M, s.K)
			var bias []float32
			if M%2 == 1 {
				bias = testutil.Gaussian(testutil.Rand(uint64(86+si)), s.N, 0.5)
			}
			ref, err := quant.GemmW8A8(aq, as, M, w, bias)
			require.NoError(t, err)
			want := tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(ref))
			got, err := g.GemmW8A8With(WgmmaTMA, aq, as, M, w, bias)
			require.NoError(t, err, "M=%d N=%d K=%d", M, s.N, s.K)
			require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
			tiled, err := g.GemmW8A8With(KernelFor(OpW8A8, M), aq, as, M, w, bias)
			require.NoError(t, err)
			exact, worst := 0, 0
			for i := range want {
				d := f16ULPDiff(got[i], want[i])
				if d == 0 {
					exact++
				}
				worst = max(worst, d)
			}
			total += len(want)
			exactAll += exact
			t.Logf("wgmma-tma M=%d N=%d K=%d: %d/%d outputs bit-exact with f16(quant.GemmW8A8), worst %d ulp", M, s.N, s.K, exact, len(want), worst)
			require.LessOrEqual(t, worst, 1)
			require.Equal(t, tiled, got, "M=%d N=%d K=%d: wgmma-tma and %s outputs differ", M, s.N, s.K, KernelFor(OpW8A8, M))
		}
	}
	t.Logf("W8A8 exact-match total (wgmma-tma): %d/%d", exactAll, total)
}
