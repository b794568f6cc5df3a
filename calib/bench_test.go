package calib

import (
	"fmt"
	"math"
	"runtime"
	"syscall"
	"testing"
	"time"

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

// threadCPU returns the calling thread's CPU time. Benchmarks on a shared, loaded machine
// also report values per CPU-second of the benchmark thread (locked to its OS thread),
// which scheduling delays do not inflate.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTimer measures the benchmark goroutine's thread CPU time over b.N iterations.
func cpuTimer(b *testing.B) func() time.Duration {
	runtime.LockOSThread()
	start := threadCPU()
	return func() time.Duration {
		d := threadCPU() - start
		runtime.UnlockOSThread()
		return d
	}
}

func reportCPU(b *testing.B, cpu time.Duration, values int) {
	if values > 0 {
		b.ReportMetric(float64(values)*float64(b.N)/cpu.Seconds(), "values/cpu-s")
	} else {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// benchValues runs add b.N times, each over n values of size bytes, and reports bytes/s,
// values/s and values per CPU-second of the benchmark thread.
func benchValues(b *testing.B, n, size int, add func()) {
	b.SetBytes(int64(size * n))
	b.ResetTimer()
	stop := cpuTimer(b)
	for range b.N {
		add()
	}
	reportCPU(b, stop(), n)
	reportValues(b, n)
}

func BenchmarkHistogramF32(b *testing.B) {
	v := benchData()
	h := NewHistogram("x")
	benchValues(b, len(v), 4, func() { h.AddF32(v) })
}

func BenchmarkHistogramF16(b *testing.B) {
	v := tensor.F32ToF16Slice(benchData())
	h := NewHistogram("x")
	benchValues(b, len(v), 2, func() { h.AddF16(v) })
}

func BenchmarkHistogramBF16(b *testing.B) {
	v := tensor.F32ToBF16Slice(benchData())
	h := NewHistogram("x")
	benchValues(b, len(v), 2, func() { h.AddBF16(v) })
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
	benchValues(b, len(v), 4, func() { baselineHist(&counts, v) })
}

func BenchmarkBaselineLoopF16(b *testing.B) {
	v := tensor.F32ToF16Slice(benchData())
	var counts [NumBins]uint64
	buf := make([]float32, len(v))
	benchValues(b, len(v), 2, func() { baselineHist(&counts, tensor.F16ToF32Slice(buf, v)) })
}

// Entropy on one core (workers = 1) for one 2048-bin histogram, and with all cores.
func BenchmarkEntropyPerTensor(b *testing.B) {
	h := histOf("e", testutil.Gaussian(testutil.Rand(43), 1<<20, 1))
	opt := DefaultOptions(MethodEntropy)
	EntropyPlanFor(128)
	b.Run("1core", func(b *testing.B) {
		stop := cpuTimer(b)
		for range b.N {
			entropyWorkers(h, opt, 1)
		}
		reportCPU(b, stop(), 0)
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
	EntropyPlanFor(128)
	b.ResetTimer()
	for range b.N {
		if _, err := ComputeAll(hs, opt); err != nil {
			b.Fatal(err)
		}
	}
}
