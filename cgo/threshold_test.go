//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestKLLogMatchesCPU: the device log used by the entropy search equals calib.KLLog bit for
// bit (normals, subnormals, integers, special values).
func TestKLLogMatchesCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(20)
	xs := []float64{0, 1, 2, 0.5, math.E, 1e-300, 5e-324, math.MaxFloat64, math.Sqrt2, math.Sqrt2 / 2, 1 + 1e-15, 1 - 1e-16,
		-1, math.Inf(1), math.NaN()}
	for range 100000 {
		xs = append(xs, math.Float64frombits(r.Uint64()&0x7fefffffffffffff|1))
	}
	for n := 1; n <= 5000; n++ {
		xs = append(xs, float64(n))
	}
	got, err := KLLogDev(g.dev, xs)
	require.NoError(t, err)
	bad, first := 0, ""
	for i, x := range xs {
		want := calib.KLLog(x)
		if math.Float64bits(got[i]) != math.Float64bits(want) && !(math.IsNaN(want) && math.IsNaN(got[i])) {
			if bad == 0 {
				first = fmt.Sprintf("x=%v (0x%016x): got %v (0x%016x), want %v (0x%016x)", x, math.Float64bits(x), got[i], math.Float64bits(got[i]), want, math.Float64bits(want))
			}
			bad++
		}
	}
	require.Zero(t, bad, "%d of %d KLLog values differ; first %s", bad, len(xs), first)
}

// calibHistograms builds histograms of varied shapes with the CPU reference: gaussian,
// laplace and heavy-tailed data at several sizes, a zero spike, a single non-zero value,
// sparse histograms, an empty one and an all-zero one.
func calibHistograms() []*calib.Histogram {
	r := testutil.Rand(21)
	hs := variedHistograms(r, []int{100, 5000, 1 << 16, 1 << 18}, 1<<15)
	hs.add("relu", func() []float32 {
		v := testutil.Gaussian(r, 1<<14, 1)
		for i := range v {
			v[i] = max(v[i], 0)
		}
		return v
	}())
	hs.add("zeros", make([]float32, 100))
	hs = append(hs, calib.NewHistogram("empty"), onlyZeroHistogram())
	return hs
}

func resultDiff(got, want calib.Result) string {
	if got.Empty != want.Empty || got.Bin != want.Bin || math.Float32bits(got.Amax) != math.Float32bits(want.Amax) {
		return fmt.Sprintf("got bin %d amax %g empty %v, want bin %d amax %g empty %v", got.Bin, got.Amax, got.Empty, want.Bin, want.Amax, want.Empty)
	}
	if math.Float64bits(got.KL) != math.Float64bits(want.KL) {
		return fmt.Sprintf("same bin %d, objective got %v (0x%016x), want %v (0x%016x)", got.Bin, got.KL, math.Float64bits(got.KL), want.KL, math.Float64bits(want.KL))
	}
	return ""
}

// TestThresholdsMatchCPU: percentile, MSE and entropy over all histograms in one launch give
// calib.Compute's bin, amax and objective exactly.
func TestThresholdsMatchCPU(t *testing.T) {
	g := gpu(t)
	hs := calibHistograms()
	var opts []calib.Options
	for _, levels := range []int{127, 255, 7} {
		for _, zs := range []bool{true, false} {
			opts = append(opts, calib.Options{Method: calib.MethodEntropy, Levels: levels, ZeroSpike: zs})
		}
		opts = append(opts, calib.Options{Method: calib.MethodMSE, Levels: levels})
	}
	for _, p := range []float64{99.99, 99.9, 50, 100, 1e-9, 0} {
		opts = append(opts, calib.Options{Method: calib.MethodPercentile, Percentile: p})
	}
	opts = append(opts, calib.Options{Method: calib.MethodMax})
	for _, opt := range opts {
		t.Run(fmt.Sprintf("%v/levels%d/zs%v/p%v", opt.Method, opt.Levels, opt.ZeroSpike, opt.Percentile), func(t *testing.T) {
			want, err := cpu.Thresholds(hs, opt)
			require.NoError(t, err)
			got, err := g.Thresholds(hs, opt)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i := range want {
				require.Empty(t, resultDiff(got[i], want[i]), "histogram %q", hs[i].Name)
			}
		})
	}
	// Invalid options: the CPU's error.
	for _, bad := range []calib.Options{{Method: calib.MethodPercentile, Percentile: 101}, {Method: calib.MethodEntropy, Levels: 256},
		{Method: calib.MethodMSE, Levels: 40000}, {Method: 9}} {
		_, wantErr := cpu.Thresholds(hs, bad)
		_, gotErr := g.Thresholds(hs, bad)
		require.Error(t, wantErr)
		require.EqualError(t, gotErr, wantErr.Error())
	}
}

// TestThresholds224: a model's worth of tensors in one call, as the benchmark runs it.
func TestThresholds224(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(22)
	hs := make([]*calib.Histogram, 224)
	for i := range hs {
		hs[i] = calib.NewHistogram(fmt.Sprintf("layer%d", i))
		hs[i].AddF32(testutil.StudentT(r, 1<<12, 2+float64(i%5)))
	}
	for _, m := range []calib.Method{calib.MethodEntropy, calib.MethodMSE, calib.MethodPercentile} {
		opt := calib.DefaultOptions(m)
		want, err := cpu.Thresholds(hs, opt)
		require.NoError(t, err)
		got, err := g.Thresholds(hs, opt)
		require.NoError(t, err)
		for i := range want {
			require.Empty(t, resultDiff(got[i], want[i]), "%v, histogram %d", m, i)
		}
	}
}
