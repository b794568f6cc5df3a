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
	for _, sc := range w4TestSchemes {
		for si, s := range w4StripShapes {
			if s.K%max(sc.s.GroupSize, 1) != 0 {
				continue
			}
			w := quantize4(t, s.N, s.K, sc.s, uint64(800+si))
			p3, err := layout.PackW4A16Strip(w)
			require.NoError(t, err)
			Ms := stripMs
			switch {
			case s.N > 4096: // the wide-block shape: only M > 4 uses wide blocks
				Ms = []int{5, 16}
				if sc.fullMs {
					Ms = []int{4, 5, 8, 9, 16}
				}
			case !sc.fullMs:
				Ms = []int{1, 5, 16}
			}
			for _, M := range Ms {
				t.Run(fmt.Sprintf("%s_M%d_N%d_K%d", sc.s, M, s.N, s.K), func(t *testing.T) {
					a := f16Values(uint64(9100+M+si), M*s.K, 1)
					var bias []float32
					if M%2 == 1 {
						bias = testutil.Gaussian(testutil.Rand(uint64(199+si)), s.N, 0.5)
					}
					got, err := g.GemmPackedW4A16Strip(a, M, p3, bias)
					require.NoError(t, err)
					checkW4A16(t, "strip", a, M, w, bias, got)
					if M == 5 || M == 16 {
						p1, err := layout.PackW4A16Tiled(w)
						require.NoError(t, err)
						viaTiled, err := g.GemmPackedW4A16With(Strip, a, M, p1, bias)
						require.NoError(t, err)
						for i := range got {
							require.Equal(t, math.Float32bits(got[i]), math.Float32bits(viaTiled[i]), "GemmPackedW4A16With (repacked tiled weight) differs at %d", i)
						}
					}
				})
			}
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
	for _, sym := range []bool{true, false} {
		w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 128}, 43)
		p1, err := layout.PackW4A16Tiled(w)
		require.NoError(t, err)
		for _, M := range []int{1, 8, 16} {
			a := f16Values(uint64(600+M), M*K, 1)
			r1, err := g.GemmPackedW4A16With(TiledLastBlock, a, M, p1, nil)
			require.NoError(t, err)
			r3, err := g.GemmPackedW4A16With(Strip, a, M, p1, nil)
			require.NoError(t, err)
			for i := range r1 {
				// Both round an F32 sum to F16; the sums differ by F32 reordering only.
				tol := 2e-3*math.Abs(float64(r1[i])) + 1e-3
				require.InDelta(t, r1[i], r3[i], tol, "sym=%v M=%d element [m=%d, n=%d]", sym, M, i/N, i%N)
			}
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
		r1, err := g.GemmPackedW4A16Strip(a, M, p3, nil)
		require.NoError(t, err)
		for rep := 0; rep < 3; rep++ {
			r2, err := g.GemmPackedW4A16Strip(a, M, p3, nil)
			require.NoError(t, err)
			for i := range r1 {
				require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "M=%d element %d differs between runs (rep %d)", M, i, rep)
			}
		}
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
