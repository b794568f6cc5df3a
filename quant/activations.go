package quant

import "math"

// Activation quantization for W8A8: symmetric int8 in [-127, 127] (not -128, so that the
// range is symmetric and the int8 x int8 products never hit the -128*-128 corner), scale =
// amax/127 as a float32 division, level = clamp(rne(x/scale), -127, 127) with a float32
// division. amax == 0 gives scale 1 (all levels 0). Inputs are expected finite (check with
// tensor.CheckFinite first); a NaN maps to level 0 so the output is still defined.

// QuantizeActivationsPerToken quantizes each row (token) of the M x K matrix x with its own
// scale (amax of the row / 127). It returns nil slices when len(x) != M*K.
func QuantizeActivationsPerToken(x []float32, M, K int) (q []int8, scales []float32) {
	if M < 0 || K < 0 || len(x) != M*K {
		return nil, nil
	}
	q = make([]int8, M*K)
	scales = make([]float32, M)
	_ = parallelRows(M, func(m0, m1 int) error {
		for m := m0; m < m1; m++ {
			row := x[m*K : (m+1)*K]
			var amax float32
			for _, v := range row {
				// |v| by clearing the sign bit; a NaN is ignored (as CUDA's fmaxf does).
				if a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31)); a > amax {
					amax = a
				}
			}
			scales[m] = quantizeActRow(row, amax, q[m*K:(m+1)*K])
		}
		return nil
	})
	return q, scales
}

// QuantizeActivationsStatic quantizes x with one scale from a calibrated amax (amax/127;
// values beyond amax saturate). amax <= 0 or NaN gives scale 1.
func QuantizeActivationsStatic(x []float32, amax float32) (q []int8, scale float32) {
	q = make([]int8, len(x))
	return q, quantizeActRow(x, amax, q)
}

// quantizeActRow quantizes src into dst with scale amax/127 and returns the scale.
func quantizeActRow(src []float32, amax float32, dst []int8) float32 {
	scale := float32(1)
	if amax > 0 {
		scale = amax / 127
	}
	// clamp(rne(v/scale), -127, 127), NaN -> 0. Clamping before rounding gives the same
	// levels (rne is monotonic and +-127 are integers), and inside [-127, 127] adding and
	// subtracting 1.5*2^23 in float32 rounds to the nearest integer, ties to even, like
	// RoundHalfEven, without its call (see level in quantrow.go).
	const magic = 0x1.8p23
	dst = dst[:len(src)]
	for i, v := range src {
		t := v / scale
		switch {
		case t > 127:
			t = 127
		case t < -127:
			t = -127
		case t != t: // NaN
			t = 0
		}
		dst[i] = int8(float32(float32(t+magic) - magic))
	}
	return scale
}
