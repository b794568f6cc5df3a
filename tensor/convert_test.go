package tensor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func f32(bits uint32) float32 { return math.Float32frombits(bits) }

func isF16NaN(h uint16) bool  { return h&0x7c00 == 0x7c00 && h&0x03ff != 0 }
func isBF16NaN(b uint16) bool { return b&0x7f80 == 0x7f80 && b&0x007f != 0 }

// roundCase is one hand-worked rounding of a float32 (given as a value or as its bits) to
// 16-bit float bits.
type roundCase[In float32 | uint32] struct {
	name string
	in   In
	want uint16
}

// Hand-picked float32 -> F16 cases; expectations worked out from IEEE binary16 (5-bit
// exponent, bias 15, 10-bit mantissa) with round to nearest, ties to even.
func TestF32ToF16RoundToNearestEven(t *testing.T) {
	cases := []roundCase[float32]{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
		{"max half", 65504, 0x7bff},
		// 1 + 2^-11 is halfway between 1 (even mantissa) and 1+2^-10: down to 1.
		{"tie to even down", 1 + 0x1p-11, 0x3c00},
		// 1 + 3*2^-11 is halfway between mantissa 1 and 2: up to the even 2.
		{"tie to even up", 1 + 3*0x1p-11, 0x3c02},
		{"just above tie", f32(math.Float32bits(1+0x1p-11) + 1), 0x3c01},
		{"just below tie", f32(math.Float32bits(1+0x1p-11) - 1), 0x3c00},
		// 65520 is halfway between 65504 (odd mantissa 0x3ff) and 65536 (overflow): Inf.
		{"overflow tie to inf", 65520, 0x7c00},
		{"just below overflow tie", f32(math.Float32bits(65520) - 1), 0x7bff},
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"minus inf", float32(math.Inf(-1)), 0xfc00},
		// Subnormal halves are multiples of 2^-24.
		{"min subnormal", 0x1p-24, 0x0001},
		{"half of min subnormal ties to zero", 0x1p-25, 0x0000},
		{"above half of min subnormal", 0x1p-25 * 1.0001, 0x0001},
		{"1.5 subnormal steps ties to 2", 3 * 0x1p-25, 0x0002},
		{"2.5 subnormal steps ties to 2", 5 * 0x1p-25, 0x0002},
		{"max subnormal", 1023 * 0x1p-24, 0x03ff},
		{"min normal", 0x1p-14, 0x0400},
		// Between the largest subnormal and the smallest normal: 1023.5 steps ties to 1024.
		{"subnormal rounds up to normal", 1023.5 * 0x1p-24, 0x0400},
		{"underflow", 1e-10, 0x0000},
		{"negative subnormal", -0x1p-24, 0x8001},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, F32ToF16(c.in), "%s: %v (0x%08x)", c.name, c.in, math.Float32bits(c.in))
	}
}

func TestF16NaNStaysNaN(t *testing.T) {
	for _, bits := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xff800001, 0x7fffffff} {
		h := F32ToF16(f32(bits))
		assert.True(t, isF16NaN(h), "0x%08x -> 0x%04x is not a NaN", bits, h)
		assert.True(t, math.IsNaN(float64(F16ToF32(h))))
	}
	assert.True(t, math.IsNaN(float64(F16ToF32(0x7e00))))
	assert.True(t, math.IsNaN(float64(F16ToF32(0x7c01))))
}

func TestF16ToF32Exact(t *testing.T) {
	assert.Equal(t, float32(0x1p-24), F16ToF32(0x0001))
	assert.Equal(t, float32(1023*0x1p-24), F16ToF32(0x03ff))
	assert.Equal(t, float32(65504), F16ToF32(0x7bff))
	assert.Equal(t, float32(-1.5), F16ToF32(0xbe00))
	assert.True(t, math.IsInf(float64(F16ToF32(0xfc00)), -1))
	assert.Equal(t, uint32(0x80000000), math.Float32bits(F16ToF32(0x8000)))
	// Every half converts exactly and back: the round trip is the identity (NaN stays NaN).
	for h := 0; h <= 0xffff; h++ {
		f := F16ToF32(uint16(h))
		if isF16NaN(uint16(h)) {
			require.True(t, math.IsNaN(float64(f)))
			require.True(t, isF16NaN(F32ToF16(f)))
			continue
		}
		require.Equal(t, uint16(h), F32ToF16(f), "0x%04x", h)
	}
}

// The slice conversion takes a shortcut for normal halves: it must give F16ToF32's bits
// (the x448/float16 conversion) for every one of the 65536 halves.
func TestF16ToF32SliceMatchesScalarOnAllHalves(t *testing.T) {
	src := make([]uint16, 1<<16)
	for h := range src {
		src[h] = uint16(h)
	}
	got := F16ToF32Slice(nil, src)
	for h, f := range got {
		require.Equal(t, math.Float32bits(F16ToF32(uint16(h))), math.Float32bits(f), "0x%04x", h)
	}
}

func BenchmarkF16ToF32Slice(b *testing.B) {
	src := make([]uint16, 1<<16)
	for h := range src {
		src[h] = F32ToF16(float32(h*7919%2001-1000) * 2e-5) // weight-like: normal, a few zeros
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(2 * len(src)))
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			for i, h := range src {
				dst[i] = F16ToF32(h)
			}
		}
	})
	b.Run("slice", func(b *testing.B) {
		for b.Loop() {
			F16ToF32Slice(dst, src)
		}
	})
	b.Run("bf16", func(b *testing.B) {
		for b.Loop() {
			BF16ToF32Slice(dst, src)
		}
	})
}

// BF16 is the top half of a float32: the cases are float32 bit patterns around the cut.
func TestF32ToBF16RoundToNearestEven(t *testing.T) {
	cases := []roundCase[uint32]{
		{"one", 0x3f800000, 0x3f80},
		{"tie to even down", 0x3f808000, 0x3f80},
		{"tie to even up", 0x3f818000, 0x3f82},
		{"above tie", 0x3f808001, 0x3f81},
		{"below tie", 0x3f807fff, 0x3f80},
		{"negative tie", 0xbf818000, 0xbf82},
		{"max float overflows to inf", 0x7f7fffff, 0x7f80},
		{"just below overflow tie", 0x7f7f7fff, 0x7f7f},
		{"overflow tie to inf", 0x7f7f8000, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"minus inf", 0xff800000, 0xff80},
		{"minus zero", 0x80000000, 0x8000},
		{"subnormal exact", 0x00010000, 0x0001},
		{"subnormal tie to zero", 0x00008000, 0x0000},
		{"subnormal tie up to even", 0x00018000, 0x0002},
		{"tiny subnormal", 0x00000001, 0x0000},
		{"largest subnormal rounds to min normal", 0x007fffff, 0x0080},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, F32ToBF16(f32(c.in)), "%s (0x%08x)", c.name, c.in)
	}
}

func TestBF16NaNStaysNaN(t *testing.T) {
	// 0x7f800001 would truncate (and round) to Inf without the quiet bit.
	for _, bits := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff, 0xff800001} {
		b := F32ToBF16(f32(bits))
		assert.True(t, isBF16NaN(b), "0x%08x -> 0x%04x is not a NaN", bits, b)
		assert.Equal(t, uint16(bits>>16)&0x8000, b&0x8000, "sign kept")
	}
	for b := 0; b <= 0xffff; b++ {
		f := BF16ToF32(uint16(b))
		require.Equal(t, uint32(b)<<16, math.Float32bits(f))
		if isBF16NaN(uint16(b)) {
			require.True(t, isBF16NaN(F32ToBF16(f)))
			continue
		}
		require.Equal(t, uint16(b), F32ToBF16(f), "0x%04x", b)
	}
}

func TestSliceConversionsAndConvert(t *testing.T) {
	v := []float32{1, -2.5, 65504, 0x1p-24}
	h := F32ToF16Slice(v)
	assert.Equal(t, []uint16{0x3c00, 0xc100, 0x7bff, 0x0001}, h)
	assert.Equal(t, v, F16ToF32Slice(nil, h))
	// 65504 = 0x477fe000: the dropped half 0xe000 is above the tie, so it rounds up to 65536.
	b := F32ToBF16Slice(v)
	assert.Equal(t, []uint16{0x3f80, 0xc020, 0x4780, 0x3380}, b)
	assert.Equal(t, []float32{1, -2.5, 65536, 0x1p-24}, BF16ToF32Slice(make([]float32, 1), b))

	x := FromF32([]float32{1, 1 + 0x1p-11, 3}, 3)
	h16 := x.Convert(F16)
	assert.Equal(t, F16, h16.DType)
	assert.Equal(t, []uint16{0x3c00, 0x3c00, 0x4200}, h16.U16())
	back := h16.Convert(F32)
	assert.Equal(t, []float32{1, 1, 3}, back.F32())
	assert.Equal(t, []uint16{0x3f80, 0x3f80, 0x4040}, x.Convert(BF16).U16())
	assert.Panics(t, func() { x.Convert(I8) })
}
