package calib

import (
	"math"
	"runtime"
)

// MSE is the mean-squared-error calibrator. Working in units of the bin width (exact
// scaling by powers of two, so the chosen bin does not depend on Exp), for each candidate
// i in 128..min(2048, top+1) (amax_i = i*2^Exp; top the last non-zero bin, as for
// Entropy: an amax above every value is never useful) with s = i/Levels:
//
//	err_i = sum_j counts[j] * (fq(c_j) - c_j)^2,  c_j = j + 0.5,
//	fq(c) = min(roundHalfEven(c / s), Levels) * s
//
// in float64, bins in increasing order (zero-count bins add exactly nothing and are
// skipped). The smallest error wins, the last candidate on ties (as entropy); KL holds the
// mean squared error err/Count in data units (err * 4^Exp / Count).
func MSE(h *Histogram, opt Options) Result {
	return mseWorkers(h, opt, runtime.GOMAXPROCS(0))
}

func mseWorkers(h *Histogram, opt Options, workers int) Result {
	r := searchBest(h, func(candidates int) []float64 {
		return squaredErrors(h, float64(opt.levels()), workers, candidates)
	})
	if !r.Empty {
		r.KL = math.Ldexp(r.KL, 2*h.Exp) / float64(h.Count) // in data units, per value
	}
	return r
}

// squaredErrors is err_i (in bin-width units) of each candidate i = EntropyStartBin+c.
func squaredErrors(h *Histogram, L float64, workers, candidates int) []float64 {
	var bins []int
	for j, c := range h.Counts {
		if c != 0 {
			bins = append(bins, j)
		}
	}
	errs := make([]float64, candidates)
	parallel(candidates, workers, func(a, b int) {
		for c := a; c < b; c++ {
			s := float64(EntropyStartBin+c) / L
			var e float64
			for _, j := range bins {
				x := float64(j) + 0.5
				q := math.RoundToEven(x / s)
				if q > L {
					q = L
				}
				d := float64(q*s) - x
				e += float64(float64(h.Counts[j]) * float64(d*d))
			}
			errs[c] = e
		}
	})
	return errs
}
