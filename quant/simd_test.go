package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The AVX2 kernels (simd.go) against the Go loops, bit for bit. Each test runs the same
// input with useSIMD on and off; on a CPU without AVX2 the comparisons skip (the Go path
// is then the only one, and the rest of the package tests it).

// setSIMD switches the kernels on or off for the rest of the test.
func setSIMD(t *testing.T, on bool) {
	t.Helper()
	if on && !hasAVX2 {
		t.Skip("CPU without AVX2/F16C: only the Go path exists")
	}
	old := useSIMD
	useSIMD = on
	t.Cleanup(func() { useSIMD = old })
}

// both runs f with the kernels, then with the Go loops, and returns the two results.
func both[T any](t *testing.T, f func() T) (simd, generic T) {
	t.Helper()
	setSIMD(t, true)
	simd = f()
	useSIMD = false
	generic = f()
	return simd, generic
}

// adversarial fills part of w with the values that break careless kernels: zeros of both
// signs, subnormals, values at the edge of float32, exact ties of the rounding, and whole
// groups of zeros or of one repeated value. (Not both +-MaxFloat32: an asymmetric range
// of width +Inf gives an infinite scale, which QTensor.Validate rejects.)
func adversarial(r *rand.Rand, w []float32, gs int) {
	specials := []float32{0, float32(math.Copysign(0, -1)), 0x1p-149, -0x1p-149, 0x1p-127, -0x1.fffffep-127,
		math.MaxFloat32, 0x1p-126, 1e30, -1e30, 0.5, -0.5, 1.5, -2.5, 7.5, -8.5}
	for i := range w {
		if r.IntN(8) == 0 {
			w[i] = specials[r.IntN(len(specials))]
		}
	}
	if len(w) >= 2*gs {
		clear(w[:gs]) // an all-zero group
		for i := gs; i < 2*gs; i++ {
			w[i] = float32(math.Copysign(0, -1)) // all -0
		}
	}
	if len(w) >= 4*gs {
		for i := 2 * gs; i < 3*gs; i++ {
			w[i] = 0x1p-140 // subnormals: the scale underflows to 0
		}
		for i := 3 * gs; i < 4*gs; i++ {
			w[i] = -3.25
		}
	}
}

func TestSIMDConvertEveryHalf(t *testing.T) {
	src := make([]uint16, 1<<16+5) // every bit pattern, and a tail the kernel leaves
	for i := range src {
		src[i] = uint16(i)
	}
	for _, bf16 := range []bool{true, false} {
		got, want := both(t, func() []float32 { return convertRow(make([]float32, len(src)), src, bf16) })
		ref := tensor.BF16ToF32Slice(nil, src)
		if !bf16 {
			ref = tensor.F16ToF32Slice(nil, src)
		}
		for i := range src {
			require.Equal(t, math.Float32bits(ref[i]), math.Float32bits(got[i]), "bf16 %v, bits %#04x", bf16, src[i])
			require.Equal(t, math.Float32bits(ref[i]), math.Float32bits(want[i]), "bf16 %v, bits %#04x", bf16, src[i])
		}
	}
}

func TestSIMDRowRanges(t *testing.T) {
	r := testutil.Rand(7)
	for _, gs := range []int{8, 16, 32, 64, 128, 136} {
		const groups = 6
		row := testutil.StudentT(r, groups*gs, 3)
		adversarial(r, row, gs)
		l := Layout{Rows: 1, Cols: groups * gs, GroupSize: gs, Groups: groups}
		type res struct{ lo, hi []uint32 }
		run := func() res {
			lo, hi := make([]float32, groups), make([]float32, groups)
			require.NoError(t, rowRanges("w", row, 0, l, lo, hi))
			var out res
			for g := range lo {
				out.lo, out.hi = append(out.lo, math.Float32bits(lo[g])), append(out.hi, math.Float32bits(hi[g]))
			}
			return out
		}
		got, want := both(t, run)
		assert.Equal(t, want, got, "group size %d", gs)
		// -0 is below +0: the all -0 group's max is -0, the all +0 group's min +0.
		assert.Equal(t, uint32(0x80000000), got.hi[1])
		assert.Equal(t, uint32(0), got.lo[0])
	}
}

func TestSIMDNonFiniteSameError(t *testing.T) {
	const rows, cols = 4, 256
	s := Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 64}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, at := range []int{0, 7, 63, 64, 130, cols - 1} {
			w := testMatrix(3, rows, cols)
			w[2*cols+at] = bad
			w[3*cols+5] = float32(math.NaN()) // a later row: the first one is reported
			for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.F16} {
				t.Run(dt.String(), func(t *testing.T) {
					tt := typed(w, dt, rows, cols)
					errs := func() [3]string {
						_, _, e1 := QuantizeTensorWithError("w", tt, s, SearchOptions{})
						scales := make([]float32, rows*cols/64)
						for i := range scales {
							scales[i] = 0.01
						}
						_, e2 := QuantizeTensorWithParams("w", tt, s, scales, nil)
						_, _, e3 := GroupRangesTensor("w", tt, s)
						return [3]string{errString(e1), errString(e2), errString(e3)}
					}
					got, want := both(t, errs)
					assert.Equal(t, want, got)
					for _, e := range got {
						assert.Contains(t, e, "row 2, col ")
						assert.Contains(t, e, "non-finite")
					}
				})
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// typed stores w as a tensor of dtype dt: F16/BF16 by rounding, finite values clamped to
// the format's largest finite one first (so that only a NaN or Inf in w is one in t).
func typed(w []float32, dt tensor.DType, rows, cols int) *tensor.Tensor {
	clamped := func(limit float32) []float32 {
		out := make([]float32, len(w))
		for i, x := range w {
			out[i] = x
			if isFinite32(x) {
				out[i] = max(-limit, min(limit, x))
			}
		}
		return out
	}
	switch dt {
	case tensor.BF16:
		return tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(clamped(0x1.fep127)), rows, cols)
	case tensor.F16:
		return tensor.FromU16(tensor.F16, tensor.F32ToF16Slice(clamped(65504)), rows, cols)
	}
	return tensor.FromF32(w, rows, cols)
}

func TestSIMDErrorSums(t *testing.T) {
	r := testutil.Rand(11)
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099} {
		ref := testutil.StudentT(r, n, 3)
		got := make([]float32, n)
		for i := range got {
			got[i] = ref[i] + float32(r.NormFloat64()*0.1)
		}
		adversarial(r, ref, 8)
		adversarial(r, got, 16)
		if n > 40 { // NaN and Inf (Compare takes any values): NaN differences, Inf sums
			for _, i := range []int{3, n/3 + 2, n - 3} {
				got[i], ref[i+1], ref[i+2], got[i+2] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(-1))
			}
			// A NaN difference last in its lane (a later one would hide a kernel that
			// keeps it in amax).
			last := n/3 + (n-n/3)&^7 // the end of the kernel's part of the second stretch
			got[last-1], got[last-5] = float32(math.NaN()), float32(math.NaN())
		}
		gotS, want := both(t, func() errorSums {
			var e errorSums
			e.add(ref[:n/3], got[:n/3]) // two stretches, as rows
			e.add(ref[n/3:], got[n/3:])
			return e
		})
		assert.Equal(t, lanesBits(&want), lanesBits(&gotS), "n %d", n)
	}
}

// lanesBits is every lane of e as bits (NaN-safe comparison).
func lanesBits(e *errorSums) []uint64 {
	var out []uint64
	for _, l := range []*[8]float64{&e.sig, &e.noise, &e.gg, &e.dot, &e.amax} {
		for _, v := range l {
			out = append(out, math.Float64bits(v))
		}
	}
	return out
}

// TestErrorSumsOrder checks the summation order errorSums defines against a plain
// transcription of it: lane k sums elements k, k+8, ... in order; the lanes are added
// ((0+1)+(2+3))+((4+5)+(6+7)). Values with very different magnitudes make any other
// order give other bits.
func TestErrorSumsOrder(t *testing.T) {
	for _, on := range []bool{true, false} {
		if on && !hasAVX2 {
			continue
		}
		r := testutil.Rand(13)
		const n = 203
		ref, got := make([]float32, n), make([]float32, n)
		for i := range ref {
			ref[i] = float32(math.Ldexp(r.Float64()-0.5, r.IntN(40)-20))
			got[i] = ref[i] * float32(1+0.1*r.NormFloat64())
		}
		useSIMD = on
		st, err := CompareChecked(ref, got)
		useSIMD = hasAVX2
		require.NoError(t, err)
		var lanes [8][2]float64 // noise, sig
		var amax float64
		for i := range ref {
			a, b := float64(ref[i]), float64(got[i])
			d := b - a
			lanes[i%8][0] += float64(d * d)
			lanes[i%8][1] += float64(a * a)
			amax = math.Max(amax, math.Abs(d))
		}
		tree := func(j int) float64 {
			l := func(k int) float64 { return lanes[k][j] }
			return ((l(0) + l(1)) + (l(2) + l(3))) + ((l(4) + l(5)) + (l(6) + l(7)))
		}
		assert.Equal(t, tree(0)/n, st.MSE, "simd %v", on)
		assert.Equal(t, 10*math.Log10(tree(1)/tree(0)), st.SQNRdB, "simd %v", on)
		assert.Equal(t, amax, st.MaxAbs, "simd %v", on)
	}
}

// Axpy's kernel against its Go loop, bit for bit, over every tail length, signed zeros,
// subnormals, infinities and products that round; and against the plain statement.
func TestAxpySIMDMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	specials := []float64{0, math.Copysign(0, -1), 5e-324, -5e-324, math.Inf(1), math.Inf(-1), 1e308, -1e308, 1.0 / 3}
	for n := 0; n <= 70; n++ {
		x, y := make([]float64, n), make([]float64, n)
		for i := range x {
			x[i], y[i] = rng.NormFloat64()*math.Exp2(float64(rng.IntN(40)-20)), rng.NormFloat64()
			if rng.IntN(5) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			}
			if rng.IntN(5) == 0 {
				y[i] = specials[rng.IntN(len(specials))]
			}
		}
		for _, a := range []float64{-0.7312, 3, math.Copysign(0, -1), 1e-300} {
			want := append([]float64(nil), y...)
			for i := range want {
				want[i] += a * x[i]
			}
			simd, generic := both(t, func() []float64 {
				got := append([]float64(nil), y...)
				Axpy(a, x, got)
				return got
			})
			for i := range want {
				require.Equal(t, math.Float64bits(want[i]), math.Float64bits(simd[i]), "n=%d a=%g i=%d simd", n, a, i)
				require.Equal(t, math.Float64bits(want[i]), math.Float64bits(generic[i]), "n=%d a=%g i=%d go", n, a, i)
			}
		}
	}
}
