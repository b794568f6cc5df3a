package cgo

// Calibration histograms shared by the host checks (hostcheck_test.go) and the cuda-tagged
// threshold tests (threshold_test.go).

import (
	"fmt"
	"math/rand/v2"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
)

// histogramSet is a list of calibration histograms built with the CPU reference.
type histogramSet []*calib.Histogram

// add appends the histogram of v, named name.
func (hs *histogramSet) add(name string, v []float32) {
	h := calib.NewHistogram(name)
	h.AddF32(v)
	*hs = append(*hs, h)
}

// variedHistograms starts a set of histograms of varied shapes drawn from r: gaussian,
// laplace and heavy-tailed data at each of sizes, a zero spike (spike values, every other
// one 0), a single non-zero value, two far apart and a sparse one of powers of two.
func variedHistograms(r *rand.Rand, sizes []int, spike int) histogramSet {
	var hs histogramSet
	for i, n := range sizes {
		hs.add(fmt.Sprintf("gauss%d", i), testutil.Gaussian(r, n, 0.1*float64(i+1)))
		hs.add(fmt.Sprintf("laplace%d", i), testutil.Laplace(r, n, 2))
		hs.add(fmt.Sprintf("t%d", i), testutil.StudentT(r, n, 1.5))
	}
	zs := testutil.Gaussian(r, spike, 1)
	for i := 0; i < len(zs); i += 2 {
		zs[i] = 0
	}
	hs.add("zerospike", zs)
	hs.add("single", []float32{3.5})
	hs.add("two", []float32{1e-30, 1e30})
	sparse := make([]float32, 4000)
	for i := range sparse {
		sparse[i] = float32(int(1) << (i % 12))
	}
	hs.add("sparse", sparse)
	return hs
}

// onlyZeroHistogram is hand-built: its only mass is a zero spike (the entropy search finds
// it empty after the zero-spike replacement).
func onlyZeroHistogram() *calib.Histogram {
	h := calib.NewHistogram("onlyzero")
	h.Counts[0], h.Exp, h.HasExp, h.AbsMax, h.Count = 50, -10, true, 1, 50
	return h
}
