//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
)

// Tolerance of every W4A16 kernel against quant.GemmW4A16, and why: the kernels multiply
// F16 weights f16(f16(u - z) * f16(scale)) (one F16 rounding of the dequantized weight, 2^-11
// relative, which the F32 reference does not have) and round the F32 sums to F16 (2^-12); the
// summation order differs by kernel (and dequantize + cuBLAS rounds once more to F16 before
// adding the bias). Relative Frobenius error <= w4Tol (2e-3; about 5e-4 expected); an
// unwritten output is NaN (the outputs are poisoned) and fails at once. The new kernels'
// index maps are checked exactly, without a GPU, by hostcheck_w4a16_test.go.

// Shapes for the stripe kernels: a single 64-column strip, odd strip counts (N = 320, 192:
// partial 256-column blocks in the mma kernel), K of 1, 3 and 43 units (43 x 256 = 11008, the
// llama2-7b down projection), long K with many stripes per tile, N large enough for more
// tiles than blocks (4096).
var w4StripeShapes = []nk{{64, 256}, {320, 768}, {192, 1024}, {128, 11008}, {4096, 512}, {256, 4096}}

// Every W4A16 kernel that reads the tiled layout, called by name, against quant.GemmW4A16
// at the M it is meant for and around its tiles, every scheme the kernels instantiate
// (groups 32, 64, 128 static; per-channel at run time), with and without bias. Kernels that
// do not take a call (W4A16Fits) are skipped for it. The g128 schemes run every M, the others
// the first and last; calls over 2^27 multiply-adds are left out (the CPU reference's time:
// the whole test is ~5.5e9 of them, a few seconds).
func TestGemmW4A16StripeKernelsVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	ms := map[Kernel][]int{SwappedStripes: {1, 3, 8, 9, 16}, MMAStripes: {17, 32, 33, 64, 100, 256}, DequantCublas: {1, 256, 300}}
	for _, k := range []Kernel{SwappedStripes, MMAStripes, DequantCublas} {
		ran := 0
		for _, sc := range w4TestSchemes {
			for si, s := range w4StripeShapes {
				if s.K%max(sc.s.GroupSize, 1) != 0 {
					continue
				}
				w := quantize4(t, s.N, s.K, sc.s, uint64(900+si))
				p, err := layout.PackW4A16Tiled(w)
				require.NoError(t, err)
				Ms := ms[k]
				if !sc.fullMs {
					Ms = []int{Ms[0], Ms[len(Ms)-1]}
				}
				for _, M := range Ms {
					if !W4A16Fits(k, M, s.N, s.K, p.Group) || M*s.N*s.K > 1<<27 {
						continue
					}
					ran++
					t.Run(fmt.Sprintf("%s_%s_M%d_N%d_K%d", k, sc.s, M, s.N, s.K), func(t *testing.T) {
						a := f16Values(uint64(11000+M+si), M*s.K, 1)
						var bias []float32
						if M%2 == 1 {
							bias = testutil.Gaussian(testutil.Rand(uint64(199+si)), s.N, 0.5)
						}
						got, err := g.GemmPackedW4A16With(k, a, M, p, bias)
						require.NoError(t, err)
						checkW4A16(t, string(k), a, M, w, bias, got)
					})
				}
			}
		}
		require.Greater(t, ran, 10, "kernel %s ran on enough cases", k)
	}
}

// The stripe kernels' partial sums are added in a fixed owner order: repeated runs (with
// other calls sharing the workspace in between) give the same bits, and the counters are left
// at zero for the next call (a stale counter would skip or double a reduction).
func TestGemmW4A16StripesDeterministic(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 4096, 4096
	w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128}, 51)
	p, err := layout.PackW4A16Tiled(w)
	require.NoError(t, err)
	for _, c := range []struct {
		k Kernel
		M int
	}{{SwappedStripes, 1}, {SwappedStripes, 16}, {MMAStripes, 17}, {MMAStripes, 128}} {
		a := f16Values(uint64(c.M), c.M*K, 1)
		r1, err := g.GemmPackedW4A16With(c.k, a, c.M, p, nil)
		require.NoError(t, err)
		_, err = g.GemmPackedW4A16With(TiledReduceKernel, a, c.M, p, nil)
		require.NoError(t, err)
		for rep := 0; rep < 3; rep++ {
			r2, err := g.GemmPackedW4A16With(c.k, a, c.M, p, nil)
			require.NoError(t, err)
			for i := range r1 {
				require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "%s M=%d rep %d element %d", c.k, c.M, rep, i)
			}
		}
	}
}

// The dequantize kernel writes the weight the CPU dequantizes, rounded to F16 as the kernels
// use it: f16(f16(u - z) * f16(scale)), exactly (layout.UnpackW4A16Tiled's levels and F16
// parameters).
func TestW4A16DequantExact(t *testing.T) {
	g := gemmTestDevice(t)
	for _, s := range []quant.Scheme{{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 4, Symmetric: false, Granularity: quant.PerChannel}} {
		const N, K = 320, 512
		w := quantize4(t, N, K, s, 61)
		p, err := layout.PackW4A16Tiled(w)
		require.NoError(t, err)
		want := exactDequant(t, p)
		bufs, err := upload(g.dev, p.Data, AsBytes(p.Scales), AsBytes(p.Zeros))
		require.NoError(t, err)
		out, err := allocPoisoned(g.dev, 2*N*K)
		require.NoError(t, err)
		require.NoError(t, W4A16DequantDev(W4A16Weight{Data: bufs[0], Scales: bufs[1], Zeros: bufs[2], N: N, K: K, Group: p.Group}, out))
		got, err := download[uint16](out, N*K)
		require.NoError(t, err)
		closeAll(append(bufs, out))
		for i := range want {
			require.Equal(t, want[i], got[i], "%s: weight [n=%d, k=%d]", s, i/K, i%K)
		}
	}
}
