package cgo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// rintDivFast is cuda/quantize_persistent.cu's rint_div8 fast path for one value in Go float32
// arithmetic (each operation rounded by an explicit conversion, so nothing is fused): the
// rounded quotient and whether the fast path may be used.
func rintDivFast(x, scale float32) (float32, bool) {
	as := float32(math.Abs(float64(scale)))
	if !(as >= 0x1p-125 && as <= 0x1p125) {
		return 0, false
	}
	inv := float32(1 / float64(scale)) // RN(1/scale): double rounding of a quotient is innocuous
	p := float32(x * inv)
	n := float32(math.RoundToEven(float64(p)))
	f := float32(p - n)
	lhs := float32(0.5 - float32(math.Abs(float64(f))))
	rhs := float32(float32(math.Abs(float64(p))) * 0x1p-20)
	return n, lhs > rhs
}

// rintDivExact is quant.QuantizeValue's rint(float32(x / scale)) (IEEE float32 division,
// here through float64, exact for a binary32 quotient).
func rintDivExact(x, scale float32) float32 {
	return float32(math.RoundToEven(float64(float32(float64(x) / float64(scale)))))
}

// The persistent quantize kernel divides only near ties: wherever its test lets the product with
// the reciprocal stand, the rounded result equals the one of the exact division. Random
// bit patterns, scales of real weights with values at and next to every half-integer of the
// int8/uint8 range, and powers of two; and the fast path must cover ordinary values.
func TestRintDivFastPathExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	fast, total := 0, 0
	check := func(x, s float32) {
		total++
		n, ok := rintDivFast(x, s)
		if !ok {
			return
		}
		fast++
		want := rintDivExact(x, s)
		if n != want {
			require.Failf(t, "fast path differs", "x=%g (0x%08x) scale=%g (0x%08x): fast %g, exact %g",
				x, math.Float32bits(x), s, math.Float32bits(s), n, want)
		}
	}
	for range 1 << 20 {
		check(math.Float32frombits(r.Uint32()), math.Float32frombits(r.Uint32()&0x7fffffff))
	}
	for range 1 << 20 {
		s := math.Float32frombits(0x3c000000 + r.Uint32N(1<<24)) // [2^-7, 2^-5): 8-bit weight scales
		h := float32(r.IntN(600)-300) * 0.5
		x := math.Float32frombits(uint32(int32(math.Float32bits(h*s)) + int32(r.IntN(9)) - 4))
		check(x, s)
	}
	for range 1 << 20 {
		s := float32(math.Ldexp(1, r.IntN(60)-30)) * (1 + float32(r.IntN(16))/16)
		check(float32(r.NormFloat64())*s*100, s)
	}
	require.Greater(t, fast, total/2, "the fast path covers most values")
}
