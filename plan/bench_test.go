package plan

import "testing"

// BenchmarkSolve compares the exact programme with the greedy baseline on a Llama-2-7B
// shaped table (224 layers, 4 candidates) at 5.3 bits per weight.
func BenchmarkSolve(b *testing.B) {
	s := synthetic(1, 32, 4096, 11008)
	for _, c := range []struct {
		name   string
		greedy bool
	}{{"greedy", true}, {"exact", false}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, _, err := Solve(s, Options{TargetBits: 5.3, Greedy: c.greedy}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
