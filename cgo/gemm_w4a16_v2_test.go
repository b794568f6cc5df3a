//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
)

// Shapes for the small-M streaming kernel (gemm_w4a16_v2.cu): one block without split-K
// (128x256), split-K with an even strip count (256x2048), an odd strip count (320: the
// second strip of the last block is idle), K not a multiple of the 8-tile chunk per warp
// (1152 = 72 tiles), and K over one block's 2048-wide A slice (4096, 11008-like 2816).
var w4V2Shapes = []nk{{128, 256}, {256, 2048}, {320, 1024}, {192, 1152}, {128, 4096}, {256, 2816}}

// Ms around the kernel's 8-row / 16-row templates and, from 17 on, V1's tiles with the
// split-K partials reduced by a separate kernel (17, 64, 129: 32- and 64-row tiles).
var w4V2Ms = []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 64, 129}

// Each variant, called by name, against quant.GemmW4A16 (relative Frobenius <= w4Tol),
// every scheme (group 32/64 make one 8-tile chunk span more than two groups: the kernel's
// fallback path), with and without bias.
func TestGemmW4A16VariantsVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, v := range []W4A16Variant{W4A16V2, W4A16V1} {
		for _, sc := range w4TestSchemes {
			for si, s := range w4V2Shapes {
				if s.K%max(sc.s.GroupSize, 1) != 0 {
					continue
				}
				w := quantize4(t, s.N, s.K, sc.s, uint64(700+si))
				p, err := PackW4A16(w)
				require.NoError(t, err)
				Ms := w4V2Ms
				if !sc.fullMs || v == W4A16V1 {
					Ms = []int{1, 8, 16}
				}
				for _, M := range Ms {
					t.Run(fmt.Sprintf("v%d_%s_M%d_N%d_K%d", v, sc.s, M, s.N, s.K), func(t *testing.T) {
						a := f16Values(uint64(9000+M+si), M*s.K, 1)
						var bias []float32
						if M%2 == 1 {
							bias = testutil.Gaussian(testutil.Rand(uint64(99+si)), s.N, 0.5)
						}
						want, err := quant.GemmW4A16(a, M, w, bias)
						require.NoError(t, err)
						got, err := g.GemmPackedW4A16Variant(v, a, M, p, bias)
						require.NoError(t, err)
						require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
						rel := relFrobenius(got, want)
						worst, at := 0.0, 0
						for i := range want {
							if d := math.Abs(float64(got[i] - want[i])); d > worst {
								worst, at = d, i
							}
						}
						t.Logf("rel Frobenius %.3g (tolerance %g), worst |diff| %.3g at [m=%d, n=%d] (got %g want %g)", rel, w4Tol, worst, at/s.N, at%s.N, got[at], want[at])
						require.LessOrEqual(t, rel, w4Tol, "variant %d: relative Frobenius error vs quant.GemmW4A16; worst element [m=%d, n=%d] got %g want %g", v, at/s.N, at%s.N, got[at], want[at])
					})
				}
			}
		}
	}
}

// V2's split-K partials and quarter sums are added in a fixed order: repeated runs give
// the same bits (a race or a float atomic would show up here as differing bits). The
// workspace is shared with V1 calls in between, which must leave the counters at zero.
func TestGemmW4A16V2Deterministic(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 512, 4096
	w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, 37)
	p, err := PackW4A16(w)
	require.NoError(t, err)
	for _, M := range []int{1, 5, 16} {
		a := f16Values(uint64(300+M), M*K, 1)
		r1, err := g.GemmPackedW4A16Variant(W4A16V2, a, M, p, nil)
		require.NoError(t, err)
		_, err = g.GemmPackedW4A16Variant(W4A16V1, a, M, p, nil)
		require.NoError(t, err)
		for rep := 0; rep < 3; rep++ {
			r2, err := g.GemmPackedW4A16Variant(W4A16V2, a, M, p, nil)
			require.NoError(t, err)
			for i := range r1 {
				require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "M=%d element %d differs between runs (rep %d)", M, i, rep)
			}
		}
	}
}

// The dispatch chosen from the H100 runs (cgo/gemm_dispatch.go): V3 up to M = 16, V2 above.
func TestW4A16Dispatch(t *testing.T) {
	want := map[int]W4A16Variant{1: W4A16V3, 8: W4A16V3, 15: W4A16V3, 16: W4A16V3, 17: W4A16V2, 128: W4A16V2, 4096: W4A16V2}
	for M, v := range want {
		require.Equal(t, v, w4a16VariantFor(M), "M=%d", M)
	}
}

// V2 rejects shapes it cannot run with a message naming the constraint.
func TestGemmW4A16V2ShapeErrors(t *testing.T) {
	g := gemmTestDevice(t)
	p := &PackedW4A16{Name: "bad", N: 96, K: 128, Group: 128, Data: make([]byte, 96*64), Scales: make([]uint16, 96)}
	_, err := g.GemmPackedW4A16Variant(W4A16V2, make([]float32, 128), 1, p, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "multiples of 64")
	require.Contains(t, err.Error(), "autoq_gemm_w4a16_v2")
}

// Above M = 16, V2 is V1's kernel with the split-K partials added by a separate kernel in the
// same split order: the outputs equal V1's bit for bit (the shape splits K at these M).
func TestGemmW4A16V2LargeMEqualsV1(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 512, 4096
	for _, sym := range []bool{true, false} {
		w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 128}, 41)
		p, err := PackW4A16(w)
		require.NoError(t, err)
		for _, M := range []int{17, 64, 128} {
			a := f16Values(uint64(500+M), M*K, 1)
			bias := testutil.Gaussian(testutil.Rand(uint64(M)), N, 0.5)
			r1, err := g.GemmPackedW4A16Variant(W4A16V1, a, M, p, bias)
			require.NoError(t, err)
			r2, err := g.GemmPackedW4A16Variant(W4A16V2, a, M, p, bias)
			require.NoError(t, err)
			require.Equal(t, -1, firstNaN(r2), "unwritten (NaN) output element")
			for i := range r1 {
				require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "sym=%v M=%d element [m=%d, n=%d]: V2 %g, V1 %g", sym, M, i/N, i%N, r2[i], r1[i])
			}
		}
	}
}
