package gguf

// refQ4K is quantize_row_q4_K_ref (qw nil) or quantize_row_q4_K_impl for super-block bi.
func refQ4K(g *Grid, bi int, x []float32, codes []int8, qw []float32) {
	var scales, mins, sw [8]float32
	var weights [32]float32
	var aux [32]int8
	var sigma2 float32
	if qw != nil {
		var sumX2 float32
		for _, v := range x {
			sumX2 += float32(v * v)
		}
		sigma2 = float32(2*sumX2) / QKK
	}
	for j := 0; j < 8; j++ {
		xs := x[32*j : 32*j+32]
		if qw == nil {
			var sumX2 float32
			for _, v := range xs {
				sumX2 += float32(v * v)
			}
			av := sqrt32(sumX2 / 32)
			for l, v := range xs {
				weights[l] = av + abs32(v)
			}
			scales[j], mins[j] = makeQkxQuants(15, xs, weights[:], codes[32*j:32*j+32], aux[:], -1, 0.1, 20)
			continue
		}
		for l, v := range xs {
			weights[l] = float32(qw[32*j+l] * sqrt32(sigma2+float32(v*v)))
		}
		var s float32
		for _, w := range weights {
			s += w
		}
		sw[j] = s
		scales[j], mins[j] = makeQkxQuants(15, xs, weights[:], codes[32*j:32*j+32], aux[:], -0.9, 0.05, 36)
	}
	sc, mn := g.Sc[bi*8:bi*8+8], g.Mn[bi*8:bi*8+8]
	if qw == nil {
		var maxScale, maxMin float32
		for j := 0; j < 8; j++ {
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		for j := 0; j < 8; j++ {
			sc[j] = int8(min(63, uint8(nearestInt(float32(invScale*scales[j])))))
			mn[j] = int8(min(63, uint8(nearestInt(float32(invMin*mins[j])))))
		}
		g.D[bi], _ = f16Round(maxScale / 63)
		g.M[bi], _ = f16Round(maxMin / 63)
	} else {
		var ls, lm [8]uint8
		dBlock := makeQpQuants(63, scales[:], ls[:], sw[:])
		mBlock := makeQpQuants(63, mins[:], lm[:], sw[:])
		for j := 0; j < 8; j++ {
			sc[j], mn[j] = int8(ls[j]&63), int8(lm[j]&63)
		}
		g.D[bi], _ = f16Round(dBlock)
		g.M[bi], _ = f16Round(mBlock)
	}
	// Recompute the codes on the stored grid (F16 d and dmin, 6-bit scales and mins).
	d, dmin := f16val(g.D[bi]), f16val(g.M[bi])
	for j := 0; j < 8; j++ {
		dj := float32(d * float32(sc[j]))
		if dj == 0 {
			continue
		}
		dm := float32(dmin * float32(mn[j]))
		for i := 32 * j; i < 32*j+32; i++ {
			codes[i] = int8(clampI(nearestInt(float32(x[i]+dm)/dj), 0, 15))
		}
	}
}

// refQ6K is quantize_row_q6_K_ref (qw nil) or quantize_row_q6_K_impl for super-block bi.
func refQ6K(g *Grid, bi int, x []float32, codes []int8, qw []float32) {
	var scales [16]float32
	var maxScale, maxAbs float32
	for ib := 0; ib < 16; ib++ {
		var w []float32
		if qw != nil {
			w = qw[16*ib : 16*ib+16]
		}
		s := makeQxQuants(32, x[16*ib:16*ib+16], codes[16*ib:16*ib+16], w)
		scales[ib] = s
		if a := abs32(s); a > maxAbs {
			maxAbs, maxScale = a, s
		}
	}
	sc := g.Sc[bi*16 : bi*16+16]
	if maxAbs < groupMaxEps { // ggml zeroes the whole block (codes 0, not 32)
		for i := range codes {
			codes[i] = 0
		}
		for i := range sc {
			sc[i] = 0
		}
		g.D[bi], _ = f16Round(0)
		return
	}
	iscale := -128 / maxScale
	g.D[bi], _ = f16Round(1 / iscale)
	for ib := 0; ib < 16; ib++ {
		sc[ib] = int8(min(127, nearestInt(float32(iscale*scales[ib]))))
	}
	d := f16val(g.D[bi])
	for j := 0; j < 16; j++ {
		dj := float32(d * float32(sc[j]))
		if dj == 0 {
			continue
		}
		for i := 16 * j; i < 16*j+16; i++ {
			codes[i] = int8(clampI(nearestInt(x[i]/dj), -32, 31) + 32)
		}
	}
}
