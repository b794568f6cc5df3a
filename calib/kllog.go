package calib

import "math"

// KLLog is the natural logarithm used by the entropy and MSE searches. It uses only
// float64 +, -, *, / and exact exponent extraction, in a fixed order, so the CUDA kernel can
// repeat it op for op (with __dadd_rn/__dmul_rn/__ddiv_rn: no FMA contraction) and GPU and
// CPU compare the same KL values and pick the same bin.
//
// Algorithm (fdlibm's e_log.c, which Go's pure-Go math.log also ports): write
// x = 2^k * (1+f) with sqrt(2)/2 <= 1+f < sqrt(2); s = f/(2+f); log(1+f) = f - hfsq +
// s*(hfsq+R) with hfsq = f*f/2 and R a degree-14 minimax polynomial in s (7 coefficients
// Lg1..Lg7); log(x) = k*ln2_hi - ((hfsq - (s*(hfsq+R) + k*ln2_lo)) - f). Error < 1 ulp.
// The explicit float64(...) conversions forbid the Go compiler from fusing a*b+c.
// A subnormal x is first multiplied by 2^52 (exact) and k lowered by 52.
//
// Special cases: KLLog(0) = -Inf, KLLog(x<0) = NaN, KLLog(+Inf) = +Inf, KLLog(NaN) = NaN.
func KLLog(x float64) float64 {
	switch {
	case x != x || x < 0:
		return math.NaN()
	case x == 0:
		return math.Inf(-1)
	case x > math.MaxFloat64:
		return x
	}
	if math.Float64bits(x)>>52 == 0 {
		return logCore(x*(1<<52), -52)
	}
	return logCore(x, 0)
}

// logCore is KLLog for a positive normal finite x, with kbias added to the extracted
// exponent. The searches call it directly (logs of counts >= 1, kbias 0): the same ops as
// KLLog, without the special-case tests.
func logCore(x float64, kbias int) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01 // 0x3fe62e42fee00000
		ln2Lo = 1.90821492927058770002e-10 // 0x3dea39ef35793c76
		lg1   = 6.666666666666735130e-01   // 0x3fe5555555555593
		lg2   = 3.999999999940941908e-01   // 0x3fd999999997fa04
		lg3   = 2.857142874366239149e-01   // 0x3fd2492494229359
		lg4   = 2.222219843214978396e-01   // 0x3fcc71c51d8e78af
		lg5   = 1.818357216161805012e-01   // 0x3fc7466496cb03de
		lg6   = 1.531383769920937332e-01   // 0x3fc39a09d078c69f
		lg7   = 1.479819860511658591e-01   // 0x3fc2f112df3e5244
		sqrt2 = 1.41421356237309504880168872420969808
	)
	// Exact exponent extraction: x = m * 2^k with m in [1, 2).
	b := math.Float64bits(x)
	k := int(b>>52) - 1023 + kbias
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52)
	if m >= sqrt2 { // keep 1+f in [sqrt(2)/2, sqrt(2))
		m = m * 0.5
		k++
	}
	f := m - 1
	kf := float64(k)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * float64(lg1+float64(s4*float64(lg3+float64(s4*float64(lg5+float64(s4*lg7)))))))
	t2 := float64(s4 * float64(lg2+float64(s4*float64(lg4+float64(s4*lg6)))))
	r := t1 + t2
	hfsq := float64(float64(0.5*f) * f)
	return float64(kf*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(kf*ln2Lo))) - f)
}
