package gptq

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Benchmarks on one 512x512 layer, w4 g128 symmetric: round-to-nearest (the baseline),
// act-mse ranges, and GPTQ with and without act-order, in the same run:
//
//	go test -run '^$' -bench . ./gptq/
func benchLayer(b *testing.B) ([]float32, *Hessian, quant.Scheme) {
	const rows, cols, tokens = 512, 512, 1024
	h := hessianOf(b, correlatedInputs(testutil.Rand(50), tokens, cols), tokens, cols)
	return randWeights(51, rows*cols), h, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}
}

func BenchmarkRTN512(b *testing.B) {
	w, _, s := benchLayer(b)
	for b.Loop() {
		if _, err := quant.Quantize("l", w, 512, 512, s, quant.SearchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkActMSE512(b *testing.B) {
	w, h, s := benchLayer(b)
	for b.Loop() {
		if _, err := RTN("l", w, 512, 512, s, h, ClipActMSE); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGPTQ512(b *testing.B) {
	w, h, s := benchLayer(b)
	for b.Loop() {
		if _, _, err := Quantize("l", w, 512, 512, s, h, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGPTQActOrder512(b *testing.B) {
	w, h, s := benchLayer(b)
	for b.Loop() {
		if _, _, err := Quantize("l", w, 512, 512, s, h, Options{ActOrder: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHessianAdd512(b *testing.B) {
	x := correlatedInputs(testutil.Rand(52), 256, 512)
	h, _ := NewHessian(512)
	for b.Loop() {
		if err := h.Add(x, 256, 512); err != nil {
			b.Fatal(err)
		}
	}
}

// oldHessianAdd is Hessian.Add as it was before the blocked kernel: a column-major float64
// copy of the batch and one dot product per entry (the benchmark baseline).
func oldHessianAdd(sum []float64, x []float32, m, k int) {
	xt := make([]float64, m*k)
	for t := 0; t < m; t++ {
		for i, v := range x[t*k : (t+1)*k] {
			xt[i*m+t] = float64(v)
		}
	}
	parallelFor(k, func(i int) {
		xi := xt[i*m : (i+1)*m]
		row := sum[i*k:]
		for j := i; j < k; j++ {
			xj := xt[j*m : (j+1)*m]
			var s float64
			for t, a := range xi {
				s += a * xj[t]
			}
			row[j] += s
		}
	})
}

// BenchmarkHessianAddVsDsyrk accumulates one batch of m tokens of width k three ways in
// the same run: the old per-entry loop, gonum's pure-Go BLAS Dsyrk (upper, transposed:
// C += A^T A on the batch converted to float64, as Add must convert too) and Add's blocked
// kernel. GFLOP/s counts k(k+1)/2 multiply-adds per token as 2 flops each.
//
//	go test -run '^$' -bench HessianAddVsDsyrk -cpu 1 -benchtime 1x ./gptq/
func BenchmarkHessianAddVsDsyrk(b *testing.B) {
	for _, sh := range []struct{ k, m int }{{1024, 512}, {4096, 2048}} {
		x := correlatedInputs(testutil.Rand(53), sh.m, sh.k)
		flops := float64(sh.k*(sh.k+1)) * float64(sh.m)
		name := fmt.Sprintf("k%d-m%d/", sh.k, sh.m)
		report := func(b *testing.B, cpu testutil.CPUMeter) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			cpu.Report(b, flops/1e9, "GFLOP")
		}
		b.Run(name+"old-loop", func(b *testing.B) {
			sum := make([]float64, sh.k*sh.k)
			cpu := testutil.StartCPU()
			for b.Loop() {
				oldHessianAdd(sum, x, sh.m, sh.k)
			}
			report(b, cpu)
		})
		b.Run(name+"gonum-dsyrk", func(b *testing.B) {
			sum := make([]float64, sh.k*sh.k)
			a := make([]float64, sh.m*sh.k)
			cpu := testutil.StartCPU()
			for b.Loop() {
				for i, v := range x {
					a[i] = float64(v)
				}
				gonum.Implementation{}.Dsyrk(blas.Upper, blas.Trans, sh.k, sh.m, 1, a, sh.k, 1, sum, sh.k)
			}
			report(b, cpu)
		})
		b.Run(name+"blocked", func(b *testing.B) {
			h, _ := NewHessian(sh.k)
			cpu := testutil.StartCPU()
			for b.Loop() {
				if err := h.Add(x, sh.m, sh.k); err != nil {
					b.Fatal(err)
				}
			}
			report(b, cpu)
		})
	}
}

// BenchmarkGPTQ2048 times GPTQ on one 2048x2048 layer (w4 g128 asymmetric) as it was
// (one dot product at a time in the factorization, the plain Go loop in the error
// propagation) and as it is (four independent sums at a time, quant.Axpy's AVX2 kernel),
// in the same run; both give the same bits (TestUpperCholOfInverseSameBitsAsReference,
// TestGPTQAxpyKernelSameBits):
//
//	go test -run '^$' -bench GPTQ2048 -cpu 1 -benchtime 2x ./gptq/
func BenchmarkGPTQ2048(b *testing.B) {
	const rows, cols, tokens = 2048, 2048, 2048
	h := hessianOf(b, correlatedInputs(testutil.Rand(54), tokens, cols), tokens, cols)
	w := randWeights(55, rows*cols)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 128}
	for _, v := range []struct {
		name string
		ax   func(float64, []float64, []float64)
		fac  func([]float64, int) ([]float64, error)
	}{{"before", axpyGo, upperCholOfInverseRef}, {"now", quant.Axpy, upperCholOfInverse}} {
		b.Run(v.name, func(b *testing.B) {
			wasAx, wasFac := axpy, factor
			axpy, factor = v.ax, v.fac
			defer func() { axpy, factor = wasAx, wasFac }()
			for b.Loop() {
				if _, _, err := Quantize("l", w, rows, cols, s, h, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
