//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Shapes for the v3 kernels (a block = 16 columns x all of K, 8 warps taking K tiles of 128
// (W4A16) / steps of 64 (W8A8) round robin): one K tile per warp or fewer (128x256: 6 idle
// warps), K tiles not a multiple of the 8 warps (192x1152 = 9 tiles; 256x2816 = 22), K not a
// multiple of 128 (320x1088: the padded last tile), long K (128x8192: 8 tiles per warp, two
// trips round the 4-deep ring), N = 64 (4 blocks), and N = 9728 (304 blocks of 32 columns:
// the wide blocks the kernel uses from M = 5 on when N/32 >= 2 x SMs, up to 152 SMs).
var w4V3Shapes = []nk{{128, 256}, {256, 2048}, {192, 1152}, {320, 1088}, {256, 2816}, {128, 8192}, {64, 640}, {9728, 384}}

// M around the 8-row / 16-row templates; 17 and 40 run 16-row chunks (grid.y > 1).
var w3Ms = []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40}

// W4A16 v3 against quant.GemmW4A16 (relative Frobenius <= w4Tol, the bound of v1/v2), every
// scheme of w4TestSchemes (group 32/64/128, per-channel, sym/asym), with and without bias,
// through both entry points (PackW4A16V3, and the variant API that repacks a v1 weight).
func TestGemmW4A16V3VsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, sc := range w4TestSchemes {
		for si, s := range w4V3Shapes {
			if s.K%max(sc.s.GroupSize, 1) != 0 {
				continue
			}
			w := quantize4(t, s.N, s.K, sc.s, uint64(800+si))
			p3, err := PackW4A16V3(w)
			require.NoError(t, err)
			Ms := w3Ms
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
					want, err := quant.GemmW4A16(a, M, w, bias)
					require.NoError(t, err)
					got, err := g.GemmPackedW4A16V3(a, M, p3, bias)
					require.NoError(t, err)
					require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
					rel := relFrobenius(got, want)
					worst, at := 0.0, 0
					for i := range want {
						if d := math.Abs(float64(got[i] - want[i])); d > worst {
							worst, at = d, i
						}
					}
					t.Logf("rel Frobenius %.3g (tolerance %g), worst |diff| %.3g at [m=%d, n=%d]", rel, w4Tol, worst, at/s.N, at%s.N)
					require.LessOrEqual(t, rel, w4Tol, "relative Frobenius error vs quant.GemmW4A16; worst element [m=%d, n=%d] got %g want %g", at/s.N, at%s.N, got[at], want[at])
					if M == 5 || M == 16 {
						p1, err := PackW4A16(w)
						require.NoError(t, err)
						viaV1, err := g.GemmPackedW4A16Variant(W4A16V3, a, M, p1, bias)
						require.NoError(t, err)
						for i := range got {
							require.Equal(t, math.Float32bits(got[i]), math.Float32bits(viaV1[i]), "variant API (repacked v1 weight) differs at %d", i)
						}
					}
				})
			}
		}
	}
}

// The v3 kernel against v1 on the same weight: the same dequantized values, only the F32
// summation order differs, so the outputs agree to F16 rounding (a layout mistake, e.g. two
// swapped nibbles, shows up as a large difference here even where the tolerance vs the
// float32 CPU reference is loose).
func TestGemmW4A16V3CloseToV1(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 256, 2048
	for _, sym := range []bool{true, false} {
		w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 128}, 43)
		p1, err := PackW4A16(w)
		require.NoError(t, err)
		for _, M := range []int{1, 8, 16} {
			a := f16Values(uint64(600+M), M*K, 1)
			r1, err := g.GemmPackedW4A16Variant(W4A16V1, a, M, p1, nil)
			require.NoError(t, err)
			r3, err := g.GemmPackedW4A16Variant(W4A16V3, a, M, p1, nil)
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
func TestGemmV3Deterministic(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 512, 4096
	w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128}, 47)
	p3, err := PackW4A16V3(w)
	require.NoError(t, err)
	w8 := quantize8(t, N, K, quant.PerChannel, 48)
	for _, M := range []int{1, 5, 16} {
		a := f16Values(uint64(310+M), M*K, 1)
		r1, err := g.GemmPackedW4A16V3(a, M, p3, nil)
		require.NoError(t, err)
		aq, as := quant.QuantizeActivationsPerToken(a, M, K)
		q1, err := g.GemmW8A8Variant(W8A8V3, aq, as, M, w8, nil)
		require.NoError(t, err)
		for rep := 0; rep < 3; rep++ {
			r2, err := g.GemmPackedW4A16V3(a, M, p3, nil)
			require.NoError(t, err)
			for i := range r1 {
				require.Equal(t, math.Float32bits(r1[i]), math.Float32bits(r2[i]), "w4a16 M=%d element %d differs between runs (rep %d)", M, i, rep)
			}
			q2, err := g.GemmW8A8Variant(W8A8V3, aq, as, M, w8, nil)
			require.NoError(t, err)
			for i := range q1 {
				require.Equal(t, math.Float32bits(q1[i]), math.Float32bits(q2[i]), "w8a8 M=%d element %d differs between runs (rep %d)", M, i, rep)
			}
		}
	}
}

// Shapes for W8A8 v3: K below one 64-wide step (48), K not a multiple of 64 (1040), N not a
// multiple of the 16-column block (72, 200), one step per warp or fewer (128x256), long K.
var w8V3Shapes = []nk{{128, 256}, {256, 2048}, {72, 48}, {200, 1040}, {128, 8192}, {320, 1024}}

// Int32 accumulators of W8A8 v3 bit-exact with quant.GemmI8.
func TestGemmI8V3ExactVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for si, s := range w8V3Shapes {
		w := quantize8(t, s.N, s.K, quant.PerChannel, uint64(510+si))
		lv, err := int8Levels(w)
		require.NoError(t, err)
		for _, M := range w3Ms {
			a := randInt8(uint64(7100*M+si), M*s.K)
			want := quant.GemmI8(a, lv, M, s.N, s.K)
			got, err := g.GemmI8Variant(W8A8V3, a, M, w)
			require.NoError(t, err)
			require.Empty(t, firstI32Diff(got, want), "M=%d N=%d K=%d: int32 accumulators vs quant.GemmI8", M, s.N, s.K)
		}
	}
}

// Extreme levels: -127 x -128 over K = 8192 (acc = 133169152, no int32 overflow).
func TestGemmI8V3Extremes(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 64, 8192
	w := quantize8(t, N, K, quant.PerChannel, 9)
	for i := range w.Data {
		w.Data[i] = 0x80 // -128
	}
	for _, M := range []int{1, 16} {
		a := make([]int8, M*K)
		for i := range a {
			a[i] = -127
		}
		got, err := g.GemmI8Variant(W8A8V3, a, M, w)
		require.NoError(t, err)
		for i, v := range got {
			require.Equal(t, int32(127*128*K), v, "M=%d element %d", M, i)
		}
	}
}

// F16 outputs of W8A8 v3 equal f16(quant.GemmW8A8) (<= 1 ulp, the v1 bound; expected 0) and
// V1's outputs bit for bit.
func TestGemmW8A8V3VsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for si, s := range w8V3Shapes {
		for _, gran := range []quant.Granularity{quant.PerChannel, quant.PerTensor} {
			w := quantize8(t, s.N, s.K, gran, uint64(610+si))
			for _, M := range w3Ms {
				t.Run(fmt.Sprintf("M%d_N%d_K%d_%s", M, s.N, s.K, gran), func(t *testing.T) {
					x := f16Values(uint64(4100+M+si), M*s.K, 1)
					aq, as := quant.QuantizeActivationsPerToken(x, M, s.K)
					var bias []float32
					if M%2 == 1 {
						bias = testutil.Gaussian(testutil.Rand(uint64(166+si)), s.N, 0.5)
					}
					ref, err := quant.GemmW8A8(aq, as, M, w, bias)
					require.NoError(t, err)
					want := tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(ref))
					got, err := g.GemmW8A8Variant(W8A8V3, aq, as, M, w, bias)
					require.NoError(t, err)
					require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
					v1, err := g.GemmW8A8Variant(W8A8V1, aq, as, M, w, bias)
					require.NoError(t, err)
					worst, worstAt := 0, 0
					for i := range want {
						if d := f16ULPDiff(got[i], want[i]); d > worst {
							worst, worstAt = d, i
						}
					}
					require.LessOrEqual(t, worst, 1, "output [m=%d, n=%d] = %g, reference %g: %d F16 ulps apart", worstAt/s.N, worstAt%s.N, got[worstAt], want[worstAt], worst)
					for i := range v1 {
						require.Equal(t, v1[i], got[i], "V3 output [m=%d, n=%d] differs from V1", i/s.N, i%s.N)
					}
				})
			}
		}
	}
}

// Shapes v3 cannot run fail with a message naming the constraint.
func TestGemmV3ShapeErrors(t *testing.T) {
	g := gemmTestDevice(t)
	p := &PackedW4A16V3{Name: "bad", N: 96, K: 128, KPad: 128, Group: 128, Data: make([]byte, 96*64), Scales: make([]uint16, 96)}
	_, err := g.GemmPackedW4A16V3(make([]float32, 128), 1, p, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "multiples of 64")
	require.Contains(t, err.Error(), "autoq_gemm_w4a16_v3")

	w := quantize8(t, 64, 40, quant.PerChannel, 3) // K = 40: not a multiple of 16
	_, err = g.GemmI8Variant(W8A8V3, make([]int8, 40), 1, w)
	require.Error(t, err)
	require.Contains(t, err.Error(), "multiple of 16")
	require.Contains(t, err.Error(), "autoq_gemm_w8a8_v3_i32")
}
