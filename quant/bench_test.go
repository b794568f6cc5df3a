package quant

import (
	"sync"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
)

// Benchmarks: go test -run '^$' -bench . ./quant/
// Quantize/dequantize report throughput as bytes of F32 input (or output) per second;
// the GEMMs run on the same shapes in the same run so that they compare directly.

const benchRows, benchCols = 4096, 4096

var benchW = sync.OnceValue(func() []float32 {
	return testutil.Gaussian(testutil.Rand(100), benchRows*benchCols, 0.02)
})

var benchSchemes = []struct {
	name string
	s    Scheme
}{
	{"int8-channel-sym", Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}},
	{"int4-g128-sym", Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 128}},
	{"int4-g128-asym", Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 128}},
}

func BenchmarkQuantize(b *testing.B) {
	w := benchW()
	for _, bs := range benchSchemes {
		b.Run(bs.name+"/max", func(b *testing.B) {
			b.SetBytes(int64(4 * len(w)))
			for b.Loop() {
				if _, err := Quantize("w", w, benchRows, benchCols, bs.s, SearchOptions{Method: SearchMax}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("int4-g128-sym/mse", func(b *testing.B) {
		b.SetBytes(int64(4 * len(w)))
		for b.Loop() {
			if _, err := Quantize("w", w, benchRows, benchCols, benchSchemes[1].s, SearchOptions{Method: SearchMSE}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDequantize(b *testing.B) {
	w := benchW()
	for _, bs := range benchSchemes {
		q, err := Quantize("w", w, benchRows, benchCols, bs.s, SearchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(w)))
			for b.Loop() {
				_ = Dequantize(q)
			}
		})
	}
}

// BenchmarkGemm compares the reference GEMMs on one shape: M tokens, N outputs, K inputs.
func BenchmarkGemm(b *testing.B) {
	const M, N, K = 16, 1024, 1024
	r := testutil.Rand(101)
	a := testutil.Gaussian(r, M*K, 1)
	w := testutil.Gaussian(r, N*K, 0.02)
	aq, as := QuantizeActivationsPerToken(a, M, K)
	q8, err := Quantize("w", w, N, K, Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, SearchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	q4, err := Quantize("w", w, N, K, Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 128}, SearchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	wl := make([]int8, N*K)
	for i, v := range q8.Levels() {
		wl[i] = int8(v)
	}
	flops := func(b *testing.B, cpu testutil.CPUMeter) {
		b.ReportMetric(2*M*N*K*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		cpu.Report(b, 2*M*N*K/1e9, "GFLOP")
	}
	b.Run("F32", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			_ = GemmF32(a, w, M, N, K)
		}
		flops(b, cpu)
	})
	b.Run("I8", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			_ = GemmI8(aq, wl, M, N, K)
		}
		flops(b, cpu)
	})
	b.Run("W8A8", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			if _, err := GemmW8A8(aq, as, M, q8, nil); err != nil {
				b.Fatal(err)
			}
		}
		flops(b, cpu)
	})
	b.Run("W4A16", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			if _, err := GemmW4A16(a, M, q4, nil); err != nil {
				b.Fatal(err)
			}
		}
		flops(b, cpu)
	})
}
