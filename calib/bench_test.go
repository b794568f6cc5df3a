package calib

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
)

// Run: go test -run '^$' -bench . -benchtime 2x ./calib/ (one core: add -cpu 1).
// Histogram benchmarks report bytes/s via SetBytes and values/s as a custom metric; the
// Baseline benchmarks are a plain loop that divides by the bin width in float64 and
// truncates (what a naive implementation does), run side by side.

const benchN = 1 << 22

func benchData() []float32 { return testutil.Laplace(testutil.Rand(42), benchN, 1) }

func reportValues(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

func BenchmarkHistogramF32(b *testing.B) {
	v := benchData()
	h := NewHistogram("x")
	b.SetBytes(int64(4 * len(v)))
	b.ResetTimer()
	for range b.N {
		h.AddF32(v)
	}
	reportValues(b, len(v))
}

func BenchmarkHistogramF16(b *testing.B) {
	v := tensor.F32ToF16Slice(benchData())
	h := NewHistogram("x")
	b.SetBytes(int64(2 * len(v)))
	b.ResetTimer()
	for range b.N {
		h.AddF16(v)
	}
	reportValues(b, len(v))
}

func BenchmarkHistogramBF16(b *testing.B) {
	v := tensor.F32ToBF16Slice(benchData())
	h := NewHistogram("x")
	b.SetBytes(int64(2 * len(v)))
	b.ResetTimer()
	for range b.N {
		h.AddBF16(v)
	}
	reportValues(b, len(v))
}

// baselineHist is the plain loop: absmax pass, then |x| / width truncated, clamped.
func baselineHist(counts *[NumBins]uint64, v []float32) {
	var amax float64
	for _, x := range v {
		amax = math.Max(amax, math.Abs(float64(x)))
	}
	width := amax / NumBins
	for _, x := range v {
		i := int(math.Abs(float64(x)) / width)
		if i >= NumBins {
			i = NumBins - 1
		}
		counts[i]++
	}
}

func BenchmarkBaselineLoopF32(b *testing.B) {
	v := benchData()
	var counts [NumBins]uint64
	b.SetBytes(int64(4 * len(v)))
	b.ResetTimer()
	for range b.N {
		baselineHist(&counts, v)
	}
	reportValues(b, len(v))
}

func BenchmarkBaselineLoopF16(b *testing.B) {
	v := tensor.F32ToF16Slice(benchData())
	var counts [NumBins]uint64
	buf := make([]float32, len(v))
	b.SetBytes(int64(2 * len(v)))
	b.ResetTimer()
	for range b.N {
		baselineHist(&counts, tensor.F16ToF32Slice(buf, v))
	}
	reportValues(b, len(v))
}

// Entropy on one core (workers = 1) for one 2048-bin histogram, and with all cores.
func BenchmarkEntropyPerTensor(b *testing.B) {
	h := histOf("e", testutil.Gaussian(testutil.Rand(43), 1<<20, 1))
	opt := DefaultOptions(MethodEntropy)
	klPlanFor(128)
	b.Run("1core", func(b *testing.B) {
		for range b.N {
			entropyWorkers(h, opt, 1)
		}
	})
	b.Run("allcores", func(b *testing.B) {
		for range b.N {
			Entropy(h, opt)
		}
	})
}

// 224 tensors (a 7B model's worth of per-layer activation inputs) through ComputeAll.
func BenchmarkEntropy224Tensors(b *testing.B) {
	r := testutil.Rand(44)
	hs := make([]*Histogram, 224)
	for i := range hs {
		hs[i] = histOf(fmt.Sprint(i), testutil.Laplace(r, 1<<14, 1))
	}
	opt := DefaultOptions(MethodEntropy)
	klPlanFor(128)
	b.ResetTimer()
	for range b.N {
		if _, err := ComputeAll(hs, opt); err != nil {
			b.Fatal(err)
		}
	}
}
