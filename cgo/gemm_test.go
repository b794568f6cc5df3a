//go:build cuda

package cgo

// GPU tests of the GEMM kernels against the CPU reference (package quant). They skip with
// a message on machines without a CUDA device.
//
// Tolerances (documented in cuda/autoq_gemm.h and here):
//   - int32 accumulators (W8A8 debug entry point): bit-exact with quant.GemmI8.
//   - activation quantization: levels and scales bit-exact with quant.QuantizeActivations*.
//   - W8A8 F16 outputs: the epilogue repeats quant.GemmW8A8's float32 operations with
//     round-to-nearest intrinsics, so the outputs are expected to equal the reference
//     rounded to F16 bit for bit; the test tolerates at most 1 F16 ulp and logs the count of
//     exact matches.
//   - W4A16 F16 outputs: the kernel multiplies F16 weights (u - z) * scale rounded to F16
//     (scale itself rounded to F16) and accumulates in F32 in another order, then rounds to
//     F16: relative Frobenius error ||got - ref|| / ||ref|| <= 2e-3 (about 5e-4 expected:
//     2^-11 relative weight rounding, 2^-12 output rounding).
//   - cuBLAS FP16 outputs: relative Frobenius error <= 1e-3 against float32 on the same
//     F16 inputs.

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	w4Tol     = 2e-3
	cublasTol = 1e-3
)

var gemmMs = []int{1, 2, 7, 16, 17, 64, 129, 1024}

func gemmTestDevice(t *testing.T) *GEMM {
	t.Helper()
	n, err := DeviceCount()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (count %d, %v): the GEMM kernel tests need a GPU", n, err)
	}
	g, err := NewGEMM(0)
	if err != nil {
		t.Skipf("CUDA device 0 cannot run the GEMM kernels: %v", err)
	}
	t.Cleanup(func() { assert.NoError(t, g.Close()) })
	info := g.Info()
	t.Logf("device 0: %s, sm_%d%d, %d SMs", info.Name, info.CCMajor, info.CCMinor, info.SMs)
	return g
}

func randInt8(seed uint64, n int) []int8 {
	r := testutil.Rand(seed)
	out := make([]int8, n)
	for i := range out {
		out[i] = int8(r.IntN(255) - 127)
	}
	return out
}

// firstNaN returns the index of the first NaN (an element the kernel did not write: the
// outputs are poisoned with 0xFFFF before each call), or -1.
func firstNaN(v []float32) int {
	for i, x := range v {
		if x != x {
			return i
		}
	}
	return -1
}

// requireSameAcc requires a kernel's int32 accumulators got [M, n] to equal quant.GemmI8's
// (want), naming the first few that differ.
func requireSameAcc(t *testing.T, kernel string, got, want []int32, n int) {
	t.Helper()
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad < 5 {
				t.Errorf("acc[m=%d, n=%d] = %d, want %d", i/n, i%n, got[i], want[i])
			}
			bad++
		}
	}
	require.Zero(t, bad, "kernel %s: %d of %d int32 accumulators differ from quant.GemmI8", kernel, bad, len(want))
}

// w8a8Case draws the inputs of a W8A8 kernel case for w [N, K]: F16 activations [M, K]
// (seed xSeed) quantized per token, a bias on odd M (seed biasSeed), and quant.GemmW8A8's
// output rounded to F16, what the kernels must give.
func w8a8Case(t *testing.T, w *quant.QTensor, M int, xSeed, biasSeed uint64) (aq []int8, as, bias, want []float32) {
	t.Helper()
	aq, as = quant.QuantizeActivationsPerToken(f16Values(xSeed, M*w.Cols, 1), M, w.Cols)
	if M%2 == 1 {
		bias = testutil.Gaussian(testutil.Rand(biasSeed), w.Rows, 0.5)
	}
	ref, err := quant.GemmW8A8(aq, as, M, w, bias)
	require.NoError(t, err)
	return aq, as, bias, tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(ref))
}

// w4a16Case draws the inputs of a W4A16 kernel case for w [N, K]: F16 activations [M, K]
// (seed aSeed) and a bias on odd M (seed biasSeed).
func w4a16Case(w *quant.QTensor, M int, aSeed, biasSeed uint64) (a, bias []float32) {
	a = f16Values(aSeed, M*w.Cols, 1)
	if M%2 == 1 {
		bias = testutil.Gaussian(testutil.Rand(biasSeed), w.Rows, 0.5)
	}
	return a, bias
}

// checkW4A16 compares kernel's output got [M, N] with quant.GemmW4A16(a, M, w, bias):
// every element written (no NaN, the outputs are poisoned before each call) and the
// relative Frobenius error within w4Tol; the worst element is logged, and named on failure.
func checkW4A16(t *testing.T, kernel string, a []float32, M int, w *quant.QTensor, bias, got []float32) {
	t.Helper()
	want, err := quant.GemmW4A16(a, M, w, bias)
	require.NoError(t, err)
	require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
	N := w.Rows
	rel := relFrobenius(got, want)
	worst, at := 0.0, 0
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > worst {
			worst, at = d, i
		}
	}
	t.Logf("rel Frobenius %.3g (tolerance %g), worst |diff| %.3g at [m=%d, n=%d] (got %g want %g)", rel, w4Tol, worst, at/N, at%N, got[at], want[at])
	require.LessOrEqual(t, rel, w4Tol, "kernel %s: relative Frobenius error vs quant.GemmW4A16; worst element [m=%d, n=%d] got %g want %g", kernel, at/N, at%N, got[at], want[at])
}

func quantize8(t *testing.T, N, K int, g quant.Granularity, seed uint64) *quant.QTensor {
	t.Helper()
	w := testutil.Gaussian(testutil.Rand(seed), N*K, 0.05)
	q, err := quant.Quantize(fmt.Sprintf("w8_%dx%d", N, K), w, N, K, quant.Scheme{Bits: 8, Symmetric: true, Granularity: g}, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	return q
}

type nk struct{ N, K int }

// Shapes: a small one, one whose small-M runs split K, one with N not a multiple of the
// W8A8 tile (128) and, for int8, K below one K step.
var w8Shapes = []nk{{128, 256}, {256, 2048}, {320, 1024}, {72, 48}}
var w4Shapes = []nk{{128, 256}, {256, 2048}, {320, 1024}}

func TestGemmI8ExactVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for si, s := range w8Shapes {
		w := quantize8(t, s.N, s.K, quant.PerChannel, uint64(100+si))
		lv, err := int8Levels(w)
		require.NoError(t, err)
		for _, M := range gemmMs {
			t.Run(fmt.Sprintf("M%d_N%d_K%d", M, s.N, s.K), func(t *testing.T) {
				a := randInt8(uint64(1000*M+si), M*s.K)
				want := quant.GemmI8(a, lv, M, s.N, s.K)
				got, err := g.GemmI8(a, M, w)
				require.NoError(t, err)
				requireSameAcc(t, "tiled", got, want, s.N)
			})
		}
	}
}

// Extreme levels: -127 activations times -128 weights over K = 4096 (acc = 66584576).
func TestGemmI8Extremes(t *testing.T) {
	g := gemmTestDevice(t)
	const M, N, K = 3, 64, 4096
	w := quantize8(t, N, K, quant.PerChannel, 9)
	for i := range w.Data {
		w.Data[i] = 0x80 // -128
	}
	a := make([]int8, M*K)
	for i := range a {
		a[i] = -127
	}
	got, err := g.GemmI8(a, M, w)
	require.NoError(t, err)
	for i, v := range got {
		require.Equal(t, int32(127*128*K), v, "element %d", i)
	}
}

func int8Levels(w *quant.QTensor) ([]int8, error) {
	lv, _, err := layout.W8A8Weights(w)
	return lv, err
}

func f16ULPDiff(a, b float32) int {
	ha, hb := int(tensor.F32ToF16(a)), int(tensor.F32ToF16(b))
	// Map sign-magnitude to a monotone integer line.
	ord := func(h int) int {
		if h&0x8000 != 0 {
			return -(h & 0x7fff)
		}
		return h
	}
	d := ord(ha) - ord(hb)
	if d < 0 {
		d = -d
	}
	return d
}

// f16ULPStats compares got with want in F16 ulps (f16ULPDiff): how many are bit-exact, the
// largest distance and the first element at that distance.
func f16ULPStats(got, want []float32) (exact, worst, worstAt int) {
	for i := range want {
		d := f16ULPDiff(got[i], want[i])
		if d == 0 {
			exact++
		}
		if d > worst {
			worst, worstAt = d, i
		}
	}
	return exact, worst, worstAt
}

func TestGemmW8A8VsReference(t *testing.T) {
	g := gemmTestDevice(t)
	total, exactAll := 0, 0
	defer func() { t.Logf("W8A8 exact-match total (dispatch): %d/%d", exactAll, total) }()
	for si, s := range w8Shapes {
		for _, gran := range []quant.Granularity{quant.PerChannel, quant.PerTensor} {
			w := quantize8(t, s.N, s.K, gran, uint64(200+si))
			for _, M := range gemmMs {
				for _, withBias := range []bool{false, true} {
					t.Run(fmt.Sprintf("M%d_N%d_K%d_%s_bias%v", M, s.N, s.K, gran, withBias), func(t *testing.T) {
						x := f16Values(uint64(3000+M+si), M*s.K, 1)
						aq, as := quant.QuantizeActivationsPerToken(x, M, s.K)
						var bias []float32
						if withBias {
							bias = testutil.Gaussian(testutil.Rand(uint64(77+si)), s.N, 0.5)
						}
						ref, err := quant.GemmW8A8(aq, as, M, w, bias)
						require.NoError(t, err)
						got, err := g.GemmW8A8(aq, as, M, w, bias)
						require.NoError(t, err)
						require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
						want := tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(ref))
						exact, worst, worstAt := f16ULPStats(got, want)
						total += len(want)
						exactAll += exact
						t.Logf("%d/%d outputs bit-exact with f16(quant.GemmW8A8), worst %d ulp, rel Frobenius %.3g", exact, len(want), worst, relFrobenius(got, want))
						require.LessOrEqual(t, worst, 1, "output [m=%d, n=%d] = %g, reference %g (f32 %g): %d F16 ulps apart", worstAt/s.N, worstAt%s.N, got[worstAt], want[worstAt], ref[worstAt], worst)
					})
				}
			}
		}
	}
}

func TestActQuantExactVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		for _, sh := range []struct{ M, K int }{{1, 8}, {7, 264}, {129, 4096}, {3, 11008}} {
			t.Run(fmt.Sprintf("%s_M%d_K%d", dt, sh.M, sh.K), func(t *testing.T) {
				x := testutil.StudentT(testutil.Rand(uint64(sh.M*sh.K)), sh.M*sh.K, 3)
				if dt == tensor.F16 {
					x = tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(x))
				} else {
					x = tensor.BF16ToF32Slice(nil, tensor.F32ToBF16Slice(x))
				}
				if sh.M > 1 { // an all-zero row: scale 1, levels 0
					for k := 0; k < sh.K; k++ {
						x[sh.K+k] = 0
					}
				}
				wq, ws := quant.QuantizeActivationsPerToken(x, sh.M, sh.K)
				q, s, err := g.QuantizeActivationsPerToken(x, sh.M, sh.K, dt)
				require.NoError(t, err)
				for m := 0; m < sh.M; m++ {
					require.Equal(t, math.Float32bits(ws[m]), math.Float32bits(s[m]), "scale of row %d: got %g want %g", m, s[m], ws[m])
				}
				for i := range wq {
					require.Equal(t, wq[i], q[i], "level [%d, %d] of x=%g (scale %g)", i/sh.K, i%sh.K, x[i], ws[i/sh.K])
				}
				// Static: amax below the row maxima, so values saturate at +-127.
				sq, sscale := quant.QuantizeActivationsStatic(x, 1.5)
				q2, scale2, err := g.QuantizeActivationsStatic(x, sh.M, sh.K, dt, 1.5)
				require.NoError(t, err)
				require.Equal(t, sscale, scale2)
				require.Equal(t, sq, q2)
			})
		}
	}
}

// w4TestScheme is a scheme of the W4A16 kernel sweeps.
type w4TestScheme struct {
	s      quant.Scheme
	fullMs bool // the whole M list; otherwise M in {1, 17, 129}
}

var w4TestSchemes = []w4TestScheme{
	{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, true},
	{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128}, true},
	{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, false},
	{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}, false},
	{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 64}, false},
	{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 64}, false},
	{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}, false},
	{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerChannel}, false},
}

func TestGemmW4A16VsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for c := range w4Cases(t, w4Shapes, 400) {
		Ms := []int{1, 17, 129}
		if c.sc.fullMs {
			Ms = gemmMs
		}
		p := packW4A16Tiled(t, c.w)
		for _, M := range Ms {
			c.run(t, "", "tiled", M, 5000, 88, func(t *testing.T, a, bias []float32) ([]float32, error) {
				return g.GemmPackedW4A16(a, M, p, bias)
			})
		}
	}
}

// Split-K partial sums are reduced in a fixed order: two runs give the same bits.
func TestGemmW4A16Deterministic(t *testing.T) {
	g := gemmTestDevice(t)
	const N, K = 256, 4096
	w := quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, 31)
	for _, M := range []int{1, 16, 64} {
		a := f16Values(uint64(M), M*K, 1)
		requireRepeatable(t, 1, N, fmt.Sprintf("M=%d", M), nil, func() ([]float32, error) { return g.GemmW4A16(a, M, w, nil) })
	}
}

func TestGemmF16CublasVsReference(t *testing.T) {
	g := gemmTestDevice(t)
	for _, s := range []nk{{128, 256}, {320, 1024}} {
		for _, M := range []int{1, 17, 129} {
			a := f16Values(uint64(M), M*s.K, 1)
			w := f16Values(uint64(M+7), s.N*s.K, 0.05)
			want := quant.GemmF32(a, w, M, s.N, s.K)
			got, err := g.GemmF16(a, M, w, s.N, s.K)
			require.NoError(t, err)
			require.Equal(t, -1, firstNaN(got))
			rel := relFrobenius(got, want)
			t.Logf("M=%d N=%d K=%d: rel Frobenius %.3g", M, s.N, s.K, rel)
			require.LessOrEqual(t, rel, cublasTol)
		}
	}
}

func TestGemmShapeErrors(t *testing.T) {
	g := gemmTestDevice(t)
	// W8A8 needs K % 16 == 0: the kernel's message names the constraint.
	w := quantize8(t, 64, 40, quant.PerChannel, 1)
	_, err := g.GemmI8(make([]int8, 40), 1, w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "multiple of 16")
	// W4A16 needs N % 64 == 0 (checked by the kernel too, not only by PackW4A16).
	p := &layout.PackedW4A16Tiled{Name: "bad", N: 96, K: 128, Group: 128, Data: make([]byte, 96*64), Scales: make([]uint16, 96)}
	_, err = g.GemmPackedW4A16(make([]float32, 128), 1, p, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "multiples of 64")
	assert.Contains(t, err.Error(), `"bad"`)
}

// The timer runs every kernel it lists at M = 1 and 32 (each of the dispatch table's
// choices and every kernel by name) and times each call with events.
func TestGemmTimerSmoke(t *testing.T) {
	gemmTestDevice(t)
	tm, err := NewGEMMTimer(0)
	require.NoError(t, err)
	defer tm.Close()
	require.Greater(t, tm.CacheBytes(), 0)
	require.NoError(t, tm.Prepare(512, 256, 128, func(int) int { return 2 }))
	names := map[string]bool{}
	for _, k := range tm.Kernels() {
		names[k.Name] = true
		require.Equal(t, 2, k.FloatBytes, k.Name)
		for _, M := range []int{1, 32, 128} {
			if !tm.Applies(k.Name, M) {
				continue
			}
			ms, err := tm.TimeEach(3, 1000, func(i int) error { return tm.Launch(k.Name, M, i) })
			require.NoError(t, err, "kernel %s M=%d", k.Name, M)
			require.Len(t, ms, 3)
			for _, v := range ms {
				assert.Greater(t, v, 0.0, "kernel %s M=%d", k.Name, M)
			}
		}
	}
	for _, n := range []string{"cublas-f16", "w8a8", "w8a8+aq", "w4a16-g128", "w8a8 [tiled-reducekernel]", "w4a16-g128 [strip]",
		"w4a16-g128 [tiled-lastblock]", "w4a16-g128 [swapped-stripes]", "w4a16-g128 [mma-stripes]", "w4a16-g128 [dequant-cublas]"} {
		assert.True(t, names[n], "kernel %q listed", n)
	}
	assert.ErrorContains(t, tm.Launch("w8a8-v3", 1, 0), "unknown kernel")
}

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
					requireSameAcc(t, string(k), got, want, s.N)
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
					aq, as, bias, want := w8a8Case(t, w, M, uint64(4000+M+si), uint64(66+si))
					got, err := g.GemmW8A8With(TiledReduceKernel, aq, as, M, w, bias)
					require.NoError(t, err)
					require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
					last, err := g.GemmW8A8With(TiledLastBlock, aq, as, M, w, bias)
					require.NoError(t, err)
					exact, worst, worstAt := f16ULPStats(got, want)
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
			aq, as, bias, want := w8a8Case(t, w, M, uint64(8000+M+si), uint64(86+si))
			got, err := g.GemmW8A8With(WgmmaTMA, aq, as, M, w, bias)
			require.NoError(t, err, "M=%d N=%d K=%d", M, s.N, s.K)
			require.Equal(t, -1, firstNaN(got), "unwritten (NaN) output element")
			tiled, err := g.GemmW8A8With(KernelFor(OpW8A8, M), aq, as, M, w, bias)
			require.NoError(t, err)
			exact, worst, _ := f16ULPStats(got, want)
			total += len(want)
			exactAll += exact
			t.Logf("wgmma-tma M=%d N=%d K=%d: %d/%d outputs bit-exact with f16(quant.GemmW8A8), worst %d ulp", M, s.N, s.K, exact, len(want), worst)
			require.LessOrEqual(t, worst, 1)
			require.Equal(t, tiled, got, "M=%d N=%d K=%d: wgmma-tma and %s outputs differ", M, s.N, s.K, KernelFor(OpW8A8, M))
		}
	}
	t.Logf("W8A8 exact-match total (wgmma-tma): %d/%d", exactAll, total)
}
