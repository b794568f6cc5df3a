package quant

// The MSE scale search. The CUDA kernel repeats this arithmetic exactly:
//
//	for i = 0 .. MSEGridSteps-1:
//	    r     = float32(100-i) / float32(100)          (float32 division)
//	    clo   = float32(lo*r), chi = float32(hi*r)     (lo, hi: the group's min and max)
//	    scale, zero = ComputeParams(clo, chi)
//	    err_i = 0 (float64)
//	    for each x of the group in column order (PerTensor: row-major over the matrix):
//	        q     = QuantizeValue(x, scale, zero)
//	        d     = float64(DequantizeValue(q, scale, zero) - x)  (subtraction in float32)
//	        err_i = err_i + d*d                         (float64, product rounded, no FMA)
//	pick the i with the smallest err_i; the smallest i on ties (strict <).
//
// Every float operation is rounded separately: the explicit float32()/float64()
// conversions below stop the Go compiler from fusing multiply-adds (the Go spec allows
// fusion otherwise), and a CUDA twin must use __fmul_rn/__fsub_rn/__dmul_rn/__dadd_rn (or
// -fmad=false) for the same reason.

// mseRatio is the i-th clipping ratio of the grid.
func mseRatio(i int) float32 { return float32(100-i) / float32(100) }

// mseCandidate returns the params of grid point i for range [lo, hi].
func mseCandidate(s Scheme, lo, hi float32, i int) (float32, int32) {
	r := mseRatio(i)
	return s.ComputeParams(float32(lo*r), float32(hi*r))
}

// mseError is the float64 sum of squared reconstruction errors of vals under (scale, zero).
func mseError(s Scheme, vals []float32, scale float32, zero int32) float64 {
	var e float64
	for _, x := range vals {
		q := s.QuantizeValue(x, scale, zero)
		d := float64(float32(DequantizeValue(q, scale, zero)) - x)
		e = e + float64(d*d)
	}
	return e
}

// mseErrorBelow is mseError, except that it stops as soon as the running sum reaches
// bound and then returns a value >= bound. The terms are non-negative, so the sum only
// grows: a candidate that reaches the best error so far can never win the strict <
// comparison, and stopping early picks exactly what the full sums pick.
func mseErrorBelow(s Scheme, vals []float32, scale float32, zero int32, bound float64) float64 {
	var e float64
	for _, x := range vals {
		q := s.QuantizeValue(x, scale, zero)
		d := float64(float32(DequantizeValue(q, scale, zero)) - x)
		e = e + float64(d*d)
		if e >= bound {
			return e
		}
	}
	return e
}

// mseSearchGroup picks the grid point with the smallest reconstruction error for one group.
func mseSearchGroup(s Scheme, vals []float32, lo, hi float32) (float32, int32) {
	bestScale, bestZero := mseCandidate(s, lo, hi, 0)
	best := mseError(s, vals, bestScale, bestZero)
	for i := 1; i < MSEGridSteps && best > 0; i++ {
		sc, z := mseCandidate(s, lo, hi, i)
		if e := mseErrorBelow(s, vals, sc, z, best); e < best {
			best, bestScale, bestZero = e, sc, z
		}
	}
	return bestScale, bestZero
}

// mseSearch runs the MSE search for every group; lo and hi come from GroupRanges.
func mseSearch(w []float32, l Layout, s Scheme, lo, hi []float32) ([]float32, []int32) {
	scales := make([]float32, l.NParams())
	var zeros []int32
	if !s.Symmetric {
		zeros = make([]int32, l.NParams())
	}
	if l.PerTensor {
		// One group: evaluate the grid points in parallel, each summing the whole matrix in
		// row-major order, then pick sequentially.
		errs := make([]float64, MSEGridSteps)
		_ = ParallelChunks(MSEGridSteps, 1, func(i, _ int) error {
			sc, z := mseCandidate(s, lo[0], hi[0], i)
			errs[i] = mseError(s, w, sc, z)
			return nil
		})
		bi := 0
		for i := 1; i < MSEGridSteps; i++ {
			if errs[i] < errs[bi] {
				bi = i
			}
		}
		sc, z := mseCandidate(s, lo[0], hi[0], bi)
		scales[0] = sc
		if zeros != nil {
			zeros[0] = z
		}
		return scales, zeros
	}
	_ = parallelRows(l.Rows, func(r0, r1 int) error {
		for r := r0; r < r1; r++ {
			for g := 0; g < l.Groups; g++ {
				i := r*l.Groups + g
				vals := w[r*l.Cols+g*l.GroupSize : r*l.Cols+(g+1)*l.GroupSize]
				sc, z := mseSearchGroup(s, vals, lo[i], hi[i])
				scales[i] = sc
				if zeros != nil {
					zeros[i] = z
				}
			}
		}
		return nil
	})
	return scales, zeros
}
