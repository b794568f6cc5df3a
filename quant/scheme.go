package quant

import (
	"fmt"
	"math"
)

// Granularity says which elements share one scale.
type Granularity uint8

const (
	PerTensor  Granularity = iota + 1 // one scale for the whole matrix
	PerChannel                        // one scale per output row
	PerGroup                          // one scale per GroupSize consecutive inputs of a row
)

var granularityNames = []string{PerTensor: "tensor", PerChannel: "channel", PerGroup: "group"}

func (g Granularity) String() string { return EnumName("Granularity", g, granularityNames) }

// ParseGranularity accepts "tensor", "channel" and "group".
func ParseGranularity(s string) (Granularity, error) {
	return ParseEnum[Granularity](s, granularityNames, "granularity", "tensor, channel or group")
}

// Scheme is how a weight matrix [rows=out, cols=in] is quantized.
type Scheme struct {
	Bits        int // MinBits..MaxBits (3 to 8)
	Symmetric   bool
	Granularity Granularity
	GroupSize   int // inputs per group, PerGroup only
}

// MinBits and MaxBits bound the weight widths a Scheme takes: every width in between (3,
// 4, 5, 6, 7, 8) is valid. Below 3 bits round-to-nearest grids degenerate (symmetric 2-bit
// has the levels -2..1 with scale amax/1.5 and no zero) and need codebooks or other
// machinery autoq does not have; above 8 bits a level no longer fits the byte storage,
// int8 activations (which need 8-bit weights, Recipe) or compressed-tensors' packing
// (at most 8 bits a value).
const (
	MinBits = 3
	MaxBits = 8
)

// Validate checks the scheme itself.
func (s Scheme) Validate() error {
	if s.Bits < MinBits || s.Bits > MaxBits {
		return fmt.Errorf("scheme: bits must be %d to %d, got %d", MinBits, MaxBits, s.Bits)
	}
	switch s.Granularity {
	case PerTensor, PerChannel:
	case PerGroup:
		if s.GroupSize <= 0 {
			return fmt.Errorf("scheme: group size must be positive, got %d", s.GroupSize)
		}
	default:
		return fmt.Errorf("scheme: unknown granularity %d", s.Granularity)
	}
	return nil
}

// String is a short name such as "w4g128a" (a: asymmetric), "w8c" (per channel), "w8t".
func (s Scheme) String() string {
	var g string
	switch s.Granularity {
	case PerTensor:
		g = "t"
	case PerChannel:
		g = "c"
	case PerGroup:
		g = fmt.Sprintf("g%d", s.GroupSize)
	}
	a := ""
	if !s.Symmetric {
		a = "a"
	}
	return fmt.Sprintf("w%d%s%s", s.Bits, g, a)
}

// QRange is the integer range [Min, Max] the scheme stores.
//
// Symmetric b-bit uses the full two's-complement range [-2^(b-1), 2^(b-1)-1] ([-4,3] for
// 3 bits, [-8,7] for int4, [-16,15] for 5, [-32,31] for 6, [-128,127] for int8) with
// scale = amax / (2^(b-1) - 0.5) (amax/3.5, /7.5, /15.5, /31.5, /127.5), the convention of
// compressed-tensors (and GPTQ): +amax rounds to 2^(b-1)-0.5 -> clamps to the top level,
// -amax to the bottom level, so no level is wasted and the error stays within half a step.
// Asymmetric b-bit stores unsigned [0, 2^b-1] ([0,7], [0,15], [0,31], [0,63], [0,255])
// with a zero point in that range.
func (s Scheme) QRange() (lo, hi int32) {
	if s.Symmetric {
		return -(1 << (s.Bits - 1)), 1<<(s.Bits-1) - 1
	}
	return 0, 1<<s.Bits - 1
}

// GroupCols returns the number of inputs that share one scale for a matrix of cols
// inputs, and the number of scale groups per row. PerTensor and PerChannel have one group
// per row of cols columns (PerTensor shares its one scale across rows too).
func (s Scheme) GroupCols(cols int) (size, groups int, err error) {
	if s.Granularity != PerGroup {
		return cols, 1, nil
	}
	if cols%s.GroupSize != 0 {
		return 0, 0, fmt.Errorf("scheme %s: %d input columns do not divide by group size %d", s, cols, s.GroupSize)
	}
	return s.GroupSize, cols / s.GroupSize, nil
}

// ComputeParams returns the scale and zero point for a group whose values lie in
// [lo, hi] (lo <= hi; for symmetric schemes only max(|lo|, |hi|) matters). The arithmetic
// is float32, in exactly this order; the GPU kernels repeat it bit for bit.
//
// A group of zeros (amax == 0, or lo == hi == 0) gets scale 1 and zero point 0 (asymmetric:
// the zero point that maps 0 to 0), so it dequantizes to exact zeros. So does a group whose
// computed scale underflows to 0 (values of a few subnormals): its values round to level 0
// (error below 1e-44) instead of being divided by zero. GPU twins must keep denormals (no
// -ftz / --use_fast_math) to repeat this.
func (s Scheme) ComputeParams(lo, hi float32) (scale float32, zero int32) {
	if s.Symmetric {
		amax := float32(math.Max(math.Abs(float64(lo)), math.Abs(float64(hi))))
		if amax == 0 {
			return 1, 0
		}
		scale = amax / (float32(int32(1)<<(s.Bits-1)) - 0.5)
		if scale == 0 { // amax a few subnormals: the scale underflows; treat as zeros
			return 1, 0
		}
		return scale, 0
	}
	// The range must contain 0 so that 0 is exactly representable.
	if lo > 0 {
		lo = 0
	}
	if hi < 0 {
		hi = 0
	}
	_, qmax := s.QRange()
	if hi == lo {
		return 1, 0
	}
	scale = (hi - lo) / float32(qmax)
	if scale == 0 { // hi-lo a few subnormals: the scale underflows; treat as zeros
		return 1, 0
	}
	z := RoundHalfEven(-lo / scale)
	if z < 0 {
		z = 0
	}
	if z > float32(qmax) {
		z = float32(qmax)
	}
	return scale, int32(z)
}

// RoundHalfEven rounds a float32 to the nearest integer, ties to even (CUDA's rintf).
func RoundHalfEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }

// QuantizeValue maps x to its integer level: clamp(rne(x/scale) + zero, QRange). The
// division is an IEEE float32 division (the GPU kernels use the same, not a reciprocal).
func (s Scheme) QuantizeValue(x, scale float32, zero int32) int32 {
	lo, hi := s.QRange()
	q := RoundHalfEven(x/scale) + float32(zero)
	if q < float32(lo) {
		return lo
	}
	if q > float32(hi) {
		return hi
	}
	return int32(q)
}

// DequantizeValue maps a level back: (q - zero) * scale, in float32.
func DequantizeValue(q int32, scale float32, zero int32) float32 {
	return float32(q-zero) * scale
}
