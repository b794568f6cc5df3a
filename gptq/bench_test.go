package gptq

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
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
