package model

import "math"

// expf is e^x in float32 arithmetic, within 2 ulps of the correctly rounded value for
// normal results (tested against math.Exp over the whole range). Attention's softmax and
// SiLU take e^x once per score and per hidden unit, where math.Exp in float64 (and a call
// per element) cost several times more; expInPlace is the loop they use.
//
// Method (Cody and Waite's range reduction): x = n ln2 + r with n = rne(x log2 e) and
// |r| <= ln2/2 (about), computed as r = (x - n*ln2hi) - n*ln2lo where ln2hi has few
// significant bits, so that n*ln2hi is exact; e^r is its Taylor polynomial to degree 7
// (truncation below 6e-9 relative on the interval, expPoly); the result is that times 2^n,
// built from the exponent bits. Every float operation is rounded on its own (the explicit
// float32() conversions forbid fused multiply-adds), so results are the same on every
// platform. Results beyond float32's range saturate to +Inf or 0, subnormal results are
// scaled in two steps with one final rounding, NaN stays NaN (expfEdge).
func expf(x float32) float32 {
	v := [1]float32{x}
	expInPlace(v[:])
	return v[0]
}

// expInPlace sets every x[i] to expf(x[i]). The work is a loop over a slice, not calls of
// expf, because the function is too large for the compiler to inline and a call per
// element cost as much as the arithmetic.
func expInPlace(x []float32) {
	for i, v := range x {
		if !(v >= -87 && v <= 88) { // also NaN: results near and past float32's range
			x[i] = expfEdge(v)
			continue
		}
		// Here n is within [-126, 127], so 2^n is a normal float32.
		n := float32(float32(float32(v*expLog2e)+expMagic) - expMagic)
		r := float32(v-float32(n*expLn2Hi)) - float32(n*expLn2Lo)
		x[i] = expPoly(r) * math.Float32frombits(uint32(int32(n)+127)<<23)
	}
}

// expPoly is the Taylor polynomial of e^r to degree 7, grouped in pairs of terms (a form
// of Estrin's scheme) so that its dependency chain is half as long as Horner's:
// (1 + r) + r^2((1/2 + r/6) + r^2((1/24 + r/120) + r^2(1/720 + r/5040))).
func expPoly(r float32) float32 {
	r2 := float32(r * r)
	a := 1 + r
	b := float32(r*(1.0/6)) + 0.5
	c := float32(r*(1.0/120)) + 1.0/24
	d := float32(r*(1.0/5040)) + 1.0/720
	d = float32(r2*d) + c
	d = float32(r2*d) + b
	return float32(r2*d) + a
}

const (
	expLog2e = 1.44269504088896341
	expLn2Hi = 0.693359375 // 355/512: n*ln2hi is exact for |n| < 2^15
	expLn2Lo = -2.12194440e-4
	expMagic = 0x1.8p23 // adding it rounds a float32 of magnitude < 2^22 to an integer
)

// expfEdge is expf outside [-87, 88] (and for NaN): the same steps with saturation and
// two-step scaling for results that overflow or are subnormal. Kept out of line so that
// expf inlines.
//
//go:noinline
func expfEdge(x float32) float32 {
	const (
		maxArg = 88.72283935546875 // above it e^x rounds to +Inf
		minArg = -103.97208404541016
	)
	switch {
	case x != x:
		return x
	case x > maxArg:
		return float32(math.Inf(1))
	case x < minArg:
		return 0
	}
	n := float32(float32(float32(x*expLog2e)+expMagic) - expMagic)
	r := float32(x-float32(n*expLn2Hi)) - float32(n*expLn2Lo)
	p := expPoly(r)
	e := int32(n)
	if e < -126 { // subnormal result: scale by 2^(e+64), then by 2^-64 (one rounding)
		return float32(p*pow2(e+64)) * 0x1p-64
	}
	if e > 127 { // n = 128: 2^128 * p may still be finite (p < 1)
		return float32(p*pow2(e-1)) * 2
	}
	return p * pow2(e)
}

// pow2 is 2^e for e in [-126, 127], from the exponent bits.
func pow2(e int32) float32 { return math.Float32frombits(uint32(e+127) << 23) }
