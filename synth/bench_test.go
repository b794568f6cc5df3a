package synth

import (
	"math"
	"math/rand/v2"
	"testing"
)

var sink float32

// Student-t(5) by table lookup against the textbook z / sqrt(chi2_5 / 5) from six normals
// (autoquant's built-in model draws its weights that way).
func BenchmarkT5(b *testing.B) {
	b.Run("table", func(b *testing.B) {
		tab := t5Table()
		r := rand.NewPCG(1, 2)
		var s float32
		for i := 0; i < b.N; i++ {
			s += t5Sample(tab, r.Uint64())
		}
		sink = s
	})
	b.Run("normals", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		var s float32
		for i := 0; i < b.N; i++ {
			z := r.NormFloat64()
			var chi float64
			for k := 0; k < 5; k++ {
				g := r.NormFloat64()
				chi += g * g
			}
			s += float32(z / math.Sqrt(chi/5))
		}
		sink = s
	})
}

// Filling one slab of a llama2-7b MLP weight as BF16, on GOMAXPROCS workers.
func BenchmarkFill(b *testing.B) {
	s, _ := LookupShape("llama2-7b")
	cfg := s.Config
	cfg.Layers = 1
	p, err := NewPlan(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]uint16, slabElems)
	b.SetBytes(int64(2 * len(buf)))
	for i := 0; i < b.N; i++ {
		p.Fill(7, 0, buf) // mlp.gate_proj
	}
}
