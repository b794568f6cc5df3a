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
	if isEmpty(h) {
		return Result{Empty: true}
	}
	levels := opt.Levels
	if levels <= 0 {
		levels = 127
	}
	L := float64(levels)
	var bins []int
	for j, c := range h.Counts {
		if c != 0 {
			bins = append(bins, j)
		}
	}
	nc := searchCandidates(h)
	errs := make([]float64, nc)
	parallel(nc, workers, func(a, b int) {
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
	best := 0
	for c := 1; c < nc; c++ {
		if errs[c] <= errs[best] {
			best = c
		}
	}
	bin := EntropyStartBin + best
	mse := math.Ldexp(errs[best], 2*h.Exp) / float64(h.Count)
	return Result{Amax: BinEdge(bin, h.Exp), Bin: bin, KL: mse}
}
