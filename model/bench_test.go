package model

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
)

// naiveMatmulT is the baseline: one output at a time, no tiling, single goroutine.
func naiveMatmulT(out, x, w []float32, M, N, K int) {
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			var s float32
			for k := 0; k < K; k++ {
				s += float32(x[m*K+k] * w[n*K+k])
			}
			out[m*N+n] = s
		}
	}
}

// go test -bench Matmul ./model: the tiled parallel product and the packed AVX2 one (same
// bits) against the naive loop.
func BenchmarkMatmul(b *testing.B) {
	for _, s := range []struct {
		name    string
		M, N, K int
	}{{"256x172x64", 256, 172, 64}, {"256x1024x1024", 256, 1024, 1024}} {
		r := testutil.Rand(1)
		x, w := testutil.Gaussian(r, s.M*s.K, 1), testutil.Gaussian(r, s.N*s.K, 1)
		out := make([]float32, s.M*s.N)
		b.Run(s.name+"/naive", func(b *testing.B) {
			b.SetBytes(int64(2 * s.M * s.N * s.K)) // "bytes" = flops, so MB/s reads as MFLOP/s
			for i := 0; i < b.N; i++ {
				naiveMatmulT(out, x, w, s.M, s.N, s.K)
			}
		})
		b.Run(s.name+"/tiled", func(b *testing.B) {
			b.SetBytes(int64(2 * s.M * s.N * s.K))
			for i := 0; i < b.N; i++ {
				matmulScalar(out, x, w, s.M, s.N, s.K)
			}
		})
		b.Run(s.name+"/packed", func(b *testing.B) {
			b.SetBytes(int64(2 * s.M * s.N * s.K))
			for i := 0; i < b.N; i++ {
				matmulT(out, x, w, s.M, s.N, s.K) // the AVX2 kernel where the CPU has it
			}
		})
	}
}

// go test -bench Forward ./model: prefill of 256 tokens of the real model, full precision
// (with expf, and with math.Exp in float64 as before: fp32-exp64) against the integer
// reference kernels (W8A8 per-token, W4A16 group 32).
func BenchmarkForward(b *testing.B) {
	seq := make([]int, 256)
	for i := range seq {
		seq[i] = (i*37 + 1) % 512
	}
	for _, v := range []struct {
		name  string
		s     *quant.Scheme
		exp64 bool
	}{
		{"fp32", nil, false},
		{"fp32-exp64", nil, true},
		{"w8a8-int", &quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, false},
		{"w4g32-int", &quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, false},
	} {
		m := loadStories(b)
		m.exp64 = v.exp64
		if v.s != nil {
			for _, name := range m.LinearNames() {
				w := m.Weight(name + ".weight")
				ql, err := NewQuantLinear(name, w.F32(), nil, w.Shape[0], w.Shape[1], *v.s, quant.SearchOptions{Method: quant.SearchMax})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.SetLinear(name, ql); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(v.name, func(b *testing.B) {
			cpu := testutil.StartCPU()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward([][]int{seq}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tok/s")
			cpu.Report(b, 256, "tok")
		})
	}
}

// go test -run '^$' -bench Linear -cpu 1 ./model: one linear layer on M tokens, the float32
// Dense (matmulT) against the integer QuantLinear paths (W8A8 with per-token activation
// quantization; W4A16 group 32), at the real model's shapes (M=256: [172,64] gate/up,
// [64,172] down, [512,64] classifier) and a larger one.
func BenchmarkLinear(b *testing.B) {
	for _, s := range []struct{ M, N, K int }{{256, 172, 64}, {256, 64, 172}, {256, 512, 64}, {64, 1024, 1024}} {
		r := testutil.Rand(2)
		x, w := testutil.Gaussian(r, s.M*s.K, 1), testutil.Gaussian(r, s.N*s.K, 0.05)
		out := make([]float32, s.M*s.N)
		dense, err := NewDense(w, nil, s.N, s.K)
		if err != nil {
			b.Fatal(err)
		}
		layers := []struct {
			name string
			l    Linear
		}{{"f32", dense}}
		for _, q := range []struct {
			name string
			s    quant.Scheme
		}{
			{"w8a8", quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}},
			{"w4a16-g32", quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}},
		} {
			ql, err := NewQuantLinear("l", w, nil, s.N, s.K, q.s, quant.SearchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			layers = append(layers, struct {
				name string
				l    Linear
			}{q.name, ql})
		}
		for _, l := range layers {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.M, s.N, s.K, l.name), func(b *testing.B) {
				flops := 2 * float64(s.M*s.N*s.K)
				cpu := testutil.StartCPU()
				for b.Loop() {
					l.l.Forward(x, s.M, out)
				}
				cpu.Report(b, flops/1e9, "GFLOP")
			})
		}
	}
}
