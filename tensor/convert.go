package tensor

import (
	"math"

	"github.com/x448/float16"
)

// F16ToF32 converts IEEE half bits to float32 (exact: every half is a float32).
func F16ToF32(h uint16) float32 { return float16.Frombits(h).Float32() }

// F32ToF16 converts float32 to IEEE half bits with round-to-nearest-even; overflow gives
// Inf, NaN stays NaN (quiet), subnormals are produced where representable.
func F32ToF16(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts float32 to bfloat16 bits with round-to-nearest-even. NaN stays NaN
// (the quiet bit is forced so that truncation cannot turn a NaN into Inf).
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN
		return uint16(u>>16) | 0x0040
	}
	// Round to nearest even: add 0x7fff plus the lowest kept bit.
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// F16ToF32Slice converts src into dst (allocated when nil or short) and returns it. The
// values are F16ToF32's, bit for bit (tested over all 65536 halves).
//
// The magnitude bits of a finite half, shifted into a float32's exponent and mantissa
// fields, are a float32 whose value is the half's times 2^-112 (exponent bias 127 against
// 15; a subnormal half lands on a subnormal float32 with the same scaling). Multiplying by
// 2^112 is exact and gives the value; the sign is put back afterwards. Inf and NaN
// (exponent field 31) go through F16ToF32.
func F16ToF32Slice(dst []float32, src []uint16) []float32 {
	if cap(dst) < len(src) {
		dst = make([]float32, len(src))
	}
	dst = dst[:len(src)]
	for i, h := range src {
		if h&0x7c00 == 0x7c00 {
			dst[i] = F16ToF32(h)
			continue
		}
		mag := math.Float32frombits(uint32(h&0x7fff)<<13) * 0x1p112
		dst[i] = math.Float32frombits(math.Float32bits(mag) | uint32(h&0x8000)<<16)
	}
	return dst
}

// BF16ToF32Slice converts src into dst (allocated when nil or short) and returns it.
func BF16ToF32Slice(dst []float32, src []uint16) []float32 {
	if cap(dst) < len(src) {
		dst = make([]float32, len(src))
	}
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = BF16ToF32(b)
	}
	return dst
}

// F32ToF16Slice converts src to F16 bits.
func F32ToF16Slice(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, f := range src {
		out[i] = F32ToF16(f)
	}
	return out
}

// F32ToBF16Slice converts src to BF16 bits.
func F32ToBF16Slice(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, f := range src {
		out[i] = F32ToBF16(f)
	}
	return out
}

// Convert returns a new tensor of dtype d holding t's values (float dtypes only).
func (t *Tensor) Convert(d DType) *Tensor {
	v := t.ToF32()
	switch d {
	case F32:
		c := make([]float32, len(v))
		copy(c, v)
		return FromF32(c, t.Shape...)
	case F16:
		return FromU16(F16, F32ToF16Slice(v), t.Shape...)
	case BF16:
		return FromU16(BF16, F32ToBF16Slice(v), t.Shape...)
	}
	panic("tensor.Convert: target must be F32, F16 or BF16, not " + d.String())
}
