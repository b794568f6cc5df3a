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
		for _, sc := range w4TestSchemes {
			for si, s := range w4TiledShapes {
				if s.K%max(sc.s.GroupSize, 1) != 0 {
					continue
				}
				w := quantize4(t, s.N, s.K, sc.s, uint64(700+si))
				p, err := layout.PackW4A16Tiled(w)
				require.NoError(t, err)
				Ms := w4TiledMs
				if !sc.fullMs {
					Ms = []int{1, 17, 129}
				}
				for _, M := range Ms {
					t.Run(fmt.Sprintf("%s_%s_M%d_N%d_K%d", k, sc.s, M, s.N, s.K), func(t *testing.T) {
						a := f16Values(uint64(9000+M+si), M*s.K, 1)
						var bias []float32
						if M%2 == 1 {
							bias = testutil.Gaussian(testutil.Rand(uint64(99+si)), s.N, 0.5)
						}
						got, err := g.GemmPackedW4A16With(k, a, M, p, bias)
						require.NoError(t, err)
						checkW4A16(t, string(k), a, M, w, bias, got)
					})
				}
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
	for _, sym := range []bool{true, false} {
		w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 128}, 41)
		p, err := layout.PackW4A16Tiled(w)
		require.NoError(t, err)
		for _, M := range []int{1, 5, 16, 17, 64, 128} {
			a := f16Values(uint64(500+M), M*K, 1)
			bias := testutil.Gaussian(testutil.Rand(uint64(M)), N, 0.5)
			r1, err := g.GemmPackedW4A16With(TiledLastBlock, a, M, p, bias)
			require.NoError(t, err)
			for rep := 0; rep < 2; rep++ {
				r2, err := g.GemmPackedW4A16With(TiledReduceKernel, a, M, p, bias)
				require.NoError(t, err)
				require.Equal(t, -1, firstNaN(r2), "unwritten (NaN) output element")
				for i := range r1 {
					require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "sym=%v M=%d rep %d element [m=%d, n=%d]: reduce kernel %g, last block %g", sym, M, rep, i/N, i%N, r2[i], r1[i])
				}
			}
			r3, err := g.GemmPackedW4A16With(TiledLastBlock, a, M, p, bias)
			require.NoError(t, err)
			require.Equal(t, r1, r3, "sym=%v M=%d: the last block after the reduce kernel", sym, M)
		}
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
