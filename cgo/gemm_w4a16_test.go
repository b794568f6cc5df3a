//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// Shapes for the tiled kernels: one block without split-K (128x256), split-K with an even
// strip count (256x2048), an odd strip count (320), K not a multiple of 8 tiles (1152 = 72
// tiles), and long K (4096, 2816).
var w4TiledShapes = []nk{{128, 256}, {256, 2048}, {320, 1024}, {192, 1152}, {128, 4096}, {256, 2816}}

// Ms around the 16/32/64-row tiles the kernel picks by M.
var w4TiledMs = []int{1, 2, 7, 16, 17, 64, 129}

// Both tiled kernels, called by name, against quant.GemmW4A16 (relative Frobenius <= w4Tol),
// every scheme (group 32/64 put more than one group in a 64-wide K stage), with and without
// bias.
func TestGemmW4A16TiledVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, k := range []Kernel{TiledLastBlock, TiledReduceKernel} {
		for c := range w4Cases(t, w4TiledShapes, 700) {
			p := packW4A16Tiled(t, c.w)
			Ms := w4TiledMs
			if !c.sc.fullMs {
				Ms = []int{1, 17, 129}
			}
			for _, M := range Ms {
				c.run(t, string(k)+"_", string(k), M, 9000, 99, func(t *testing.T, a, bias []float32) ([]float32, error) {
					return g.GemmPackedW4A16With(k, a, M, p, bias)
				})
			}
		}
	}
}

// The reduce kernel adds the split-K partials in the same split order as the last block:
// the outputs are the same bits at every M (the shape splits K at all of these), which is
// what lets the dispatch switch between them without changing any result. Repeated runs
// with the shared workspace in between give the same bits (no race, no float atomics, the
// counters left at zero).
func TestGemmW4A16ReduceKernelEqualsLastBlock(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 512, 4096
	for c := range w4SymCases(t, N, K, 41, 500, []int{1, 5, 16, 17, 64, 128}) {
		bias := testutil.Gaussian(testutil.Rand(uint64(c.M)), N, 0.5)
		r1, err := g.GemmPackedW4A16With(TiledLastBlock, c.a, c.M, c.p, bias)
		require.NoError(t, err)
		for rep := 0; rep < 2; rep++ {
			r2, err := g.GemmPackedW4A16With(TiledReduceKernel, c.a, c.M, c.p, bias)
			require.NoError(t, err)
			require.Equal(t, -1, firstNaN(r2), "unwritten (NaN) output element")
			require.Empty(t, firstF32Diff(r2, r1, N, false), "sym=%v M=%d rep %d: reduce kernel against last block", c.sym, c.M, rep)
		}
		r3, err := g.GemmPackedW4A16With(TiledLastBlock, c.a, c.M, c.p, bias)
		require.NoError(t, err)
		require.Equal(t, r1, r3, "sym=%v M=%d: the last block after the reduce kernel", c.sym, c.M)
	}
}

// The tiled kernel rejects shapes it cannot run with a message naming the constraint and
// the entry point; an unknown kernel name is an error.
func TestGemmW4A16TiledShapeErrors(t *testing.T) {
	g := gemmTestDevice(t)
	p := &layout.PackedW4A16Tiled{Name: "bad", N: 96, K: 128, Group: 128, Data: make([]byte, 96*64), Scales: make([]uint16, 96)}
	_, err := g.GemmPackedW4A16With(TiledReduceKernel, make([]float32, 128), 1, p, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "multiples of 64")
	require.Contains(t, err.Error(), "autoq_gemm_w4a16_tiled")
	require.Contains(t, err.Error(), `"bad"`)
	_, err = g.GemmPackedW4A16With("v2", make([]float32, 128), 1, p, nil)
	require.ErrorContains(t, err, "unknown kernel")
}

// Shapes for the strip kernel (a block = 16 columns x all of K, 8 warps taking K tiles of 128
// round robin): one K tile per warp or fewer (128x256: 6 idle
// warps), K tiles not a multiple of the 8 warps (192x1152 = 9 tiles; 256x2816 = 22), K not a
// multiple of 128 (320x1088: the padded last tile), long K (128x8192: 8 tiles per warp, two
// trips round the 4-deep ring), N = 64 (4 blocks), and N = 9728 (304 blocks of 32 columns:
// the wide blocks the kernel uses from M = 5 on when N/32 >= 2 x SMs, up to 152 SMs).
var w4StripShapes = []nk{{128, 256}, {256, 2048}, {192, 1152}, {320, 1088}, {256, 2816}, {128, 8192}, {64, 640}, {9728, 384}}

// M around the 8-row / 16-row templates; 17 and 40 run 16-row chunks (grid.y > 1).
var stripMs = []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40}

// The strip kernel against quant.GemmW4A16 (relative Frobenius <= w4Tol, the tiled kernel's
// bound), every scheme of w4TestSchemes (group 32/64/128, per-channel, sym/asym), with and
// without bias, through both entry points (a strip-layout weight, and GemmPackedW4A16With,
// which repacks a tiled-layout weight).
func TestGemmW4A16StripVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for c := range w4Cases(t, w4StripShapes, 800) {
		p3, err := layout.PackW4A16Strip(c.w)
		require.NoError(t, err)
		Ms := stripMs
		switch {
		case c.s.N > 4096: // the wide-block shape: only M > 4 uses wide blocks
			Ms = []int{5, 16}
			if c.sc.fullMs {
				Ms = []int{4, 5, 8, 9, 16}
			}
		case !c.sc.fullMs:
			Ms = []int{1, 5, 16}
		}
		for _, M := range Ms {
			c.run(t, "", "strip", M, 9100, 199, func(t *testing.T, a, bias []float32) ([]float32, error) {
				got, err := g.GemmPackedW4A16Strip(a, M, p3, bias)
				if err == nil && (M == 5 || M == 16) {
					viaTiled, err := g.GemmPackedW4A16With(Strip, a, M, packW4A16Tiled(t, c.w), bias)
					require.NoError(t, err)
					for i := range got {
						require.Equal(t, math.Float32bits(got[i]), math.Float32bits(viaTiled[i]), "GemmPackedW4A16With (repacked tiled weight) differs at %d", i)
					}
				}
				return got, err
			})
		}
	}
}

// The strip kernel against the tiled kernel on the same weight: the same dequantized values,
// only the F32 summation order differs, so the outputs agree to F16 rounding (a layout
// mistake, e.g. two swapped nibbles, shows up as a large difference here even where the
// tolerance vs the float32 CPU reference is loose).
func TestGemmW4A16StripCloseToTiled(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 256, 2048
	for c := range w4SymCases(t, N, K, 43, 600, []int{1, 8, 16}) {
		r1, err := g.GemmPackedW4A16With(TiledLastBlock, c.a, c.M, c.p, nil)
		require.NoError(t, err)
		r3, err := g.GemmPackedW4A16With(Strip, c.a, c.M, c.p, nil)
		require.NoError(t, err)
		for i := range r1 {
			// Both round an F32 sum to F16; the sums differ by F32 reordering only.
			tol := 2e-3*math.Abs(float64(r1[i])) + 1e-3
			require.InDelta(t, r1[i], r3[i], tol, "sym=%v M=%d element [m=%d, n=%d]", c.sym, c.M, i/N, i%N)
		}
	}
}

// Fixed summation order (warp 0..7 in shared memory, no atomics): repeated runs give the
// same bits.
func TestGemmW4A16StripDeterministic(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 512, 4096
	w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128}, 47)
	p3, err := layout.PackW4A16Strip(w)
	require.NoError(t, err)
	for _, M := range []int{1, 5, 16} {
		a := f16Values(uint64(310+M), M*K, 1)
		requireRepeatable(t, 3, N, fmt.Sprintf("M=%d", M), nil, func() ([]float32, error) {
			return g.GemmPackedW4A16Strip(a, M, p3, nil)
		})
	}
}

// Shapes the strip kernel cannot run fail with a message naming the constraint.
func TestGemmW4A16StripShapeErrors(t *testing.T) {
	g := gemmTestDevice(t)
	p := &layout.PackedW4A16Strip{Name: "bad", N: 96, K: 128, KPad: 128, Group: 128, Data: make([]byte, 96*64), Scales: make([]uint16, 96)}
	_, err := g.GemmPackedW4A16Strip(make([]float32, 128), 1, p, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "multiples of 64")
	require.Contains(t, err.Error(), "autoq_gemm_w4a16_strip")
}

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
		for c := range w4Cases(t, w4StripeShapes, 900) {
			p := packW4A16Tiled(t, c.w)
			Ms := ms[k]
			if !c.sc.fullMs {
				Ms = []int{Ms[0], Ms[len(Ms)-1]}
			}
			for _, M := range Ms {
				if !W4A16Fits(k, M, c.s.N, c.s.K, p.Group) || M*c.s.N*c.s.K > 1<<27 {
					continue
				}
				ran++
				c.run(t, string(k)+"_", string(k), M, 11000, 199, func(t *testing.T, a, bias []float32) ([]float32, error) {
					return g.GemmPackedW4A16With(k, a, M, p, bias)
				})
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
	p := packW4A16Tiled(t, quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128}, 51))
	for _, c := range []struct {
		k Kernel
		M int
	}{{SwappedStripes, 1}, {SwappedStripes, 16}, {MMAStripes, 17}, {MMAStripes, 128}} {
		a := f16Values(uint64(c.M), c.M*K, 1)
		other := func() error { // another kernel on the shared workspace
			_, err := g.GemmPackedW4A16With(TiledReduceKernel, a, c.M, p, nil)
			return err
		}
		requireRepeatable(t, 3, N, fmt.Sprintf("%s M=%d", c.k, c.M), other, func() ([]float32, error) {
			return g.GemmPackedW4A16With(c.k, a, c.M, p, nil)
		})
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
