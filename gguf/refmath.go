package gguf

import (
	"math"

	"github.com/autoq/autoq/tensor"
)

// The helpers below restate the algorithms of llama.cpp's ggml-quants.c (make_qx_quants,
// make_qkx2_quants/make_qkx3_quants, make_qp_quants) in float32, one rounding per operation
// in the C evaluation order; the explicit float32 conversions keep Go from fusing a
// multiply and an add. They are written from the published algorithm, not copied.

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it is zero.
const groupMaxEps = float32(1e-15)

// nearestInt is ggml's nearest_int: round to nearest, ties to even (its 1.5*2^23 trick).
func nearestInt(f float32) int32 { return int32(math.RoundToEven(float64(f))) }

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// f16Round returns the F16 bits of x and the float32 value they hold.
func f16Round(x float32) (uint16, float32) {
	h := tensor.F32ToF16(x)
	return h, tensor.F16ToF32(h)
}

func clampI(v, lo, hi int32) int32 { return min(max(v, lo), hi) }

// makeQxQuants is make_qx_quants with rmse_type 1: a symmetric scale for the signed levels
// [-nmax, nmax-1] (stored as L = level + nmax), refined by a weighted least-squares fit over
// 19 trial scales. qw nil weighs each element by x^2. Returns the scale.
func makeQxQuants(nmax int32, x []float32, L []int8, qw []float32) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		for i := range L {
			L[i] = 0
		}
		return 0
	}
	weight := func(i int) float32 {
		if qw != nil {
			return qw[i]
		}
		return float32(x[i] * x[i])
	}
	fit := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, v := range x {
			l := clampI(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			if store {
				L[i] = int8(l + nmax)
			}
			w, fl := weight(i), float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		return
	}
	iscale := float32(-nmax) / mx
	sumlx, suml2 := fit(iscale, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := int32(-9); is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / mx
		slx, sl2 := fit(iscale, false)
		if sl2 > 0 && float32(slx*slx) > float32(best*sl2) {
			fit(iscale, true)
			scale = slx / sl2
			best = float32(scale * slx)
		}
	}
	return scale
}

// makeQkxQuants is make_qkx2_quants / make_qkx3_quants (identical for the callers here):
// an asymmetric grid scale*L + min (min <= 0) for levels [0, nmax], the plain min/max fit
// refined by nstep+1 weighted least-squares fits of scale and min with trial inverse
// scales (rmin + rdelta*is + nmax)/(max-min). Squared error (use_mad false). Returns the
// scale and -min.
func makeQkxQuants(nmax int32, x, weights []float32, L, aux []int8, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		mn = min(mn, x[i])
		mx = max(mx, x[i])
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		for i := range L {
			L[i] = 0
		}
		return 0, -mn
	}
	iscale := float32(nmax) / float32(mx-mn)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := clampI(nearestInt(float32(iscale*float32(v-mn))), 0, nmax)
		L[i] = int8(l)
		diff := float32(float32(float32(scale*float32(l))+mn) - v)
		bestErr += float32(weights[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+float32(nmax)) / float32(mx-mn)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampI(nearestInt(float32(iscale*float32(v-mn))), 0, nmax)
			aux[i] = int8(l)
			w, fl := weights[i], float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var cur float32
			for i, v := range x {
				diff := float32(float32(float32(thisScale*float32(aux[i]))+thisMin) - v)
				cur += float32(weights[i] * float32(diff*diff))
			}
			if cur < bestErr {
				copy(L, aux)
				bestErr, scale, mn = cur, thisScale, thisMin
			}
		}
	}
	return scale, -mn
}

// makeQpQuants is make_qp_quants: unsigned levels [0, nmax] for non-negative values x
// (the sub-block scales or mins of a super-block) with weights qw, the scale chosen among 9
// trials by weighted squared error and refined by up to 5 rounds of coordinate descent on
// the levels. Returns the scale.
func makeQpQuants(nmax int32, x []float32, L []uint8, qw []float32) float32 {
	var mx float32
	for _, v := range x {
		mx = max(mx, v)
	}
	if mx < groupMaxEps {
		for i := range L {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(nmax) / mx
	for i, v := range x {
		L[i] = uint8(nearestInt(float32(iscale * v)))
	}
	scale := 1 / iscale
	var bestMSE float32
	for i, v := range x {
		diff := v - float32(scale*float32(L[i]))
		bestMSE += float32(float32(qw[i]*diff) * diff)
	}
	for is := int32(-4); is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := float32(float32(0.1*float32(is))+float32(nmax)) / mx
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			l := min(nmax, nearestInt(float32(iscaleIs*v)))
			diff := v - float32(scaleIs*float32(l))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < bestMSE {
			bestMSE, iscale = mse, iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i, v := range x {
		l := min(nmax, nearestInt(float32(iscale*v)))
		L[i] = uint8(l)
		w, fl := qw[i], float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for try := 0; try < 5; try++ {
		changed := 0
		for i, v := range x {
			w, fl := qw[i], float32(L[i])
			slx := sumlx - float32(float32(w*v)*fl)
			sl2 := suml2 - float32(float32(w*fl)*fl)
			if slx > 0 && sl2 > 0 {
				nl := min(nmax, nearestInt(float32(v*sl2)/slx))
				if nl != int32(L[i]) {
					fn := float32(nl)
					slx += float32(float32(w*v) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i], sumlx, suml2 = uint8(nl), slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

func f16val(h uint16) float32 { return tensor.F16ToF32(h) }
