package rotate

import (
	"fmt"
	"testing"
)

// BenchmarkMulRows compares the fast randomized Hadamard (FWHT ⊗ Paley base) with a dense
// product by the same matrix, on 16 rows: go test ./rotate -bench MulRows -run '^$'
func BenchmarkMulRows(b *testing.B) {
	const rows = 16
	for _, n := range []int{4096, 5120} {
		o, err := NewOrthogonal(Hadamard, n, 1)
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float64, rows*n)
		for i := range x {
			x[i] = float64(i%7) - 3
		}
		b.Run(fmt.Sprintf("fast/%d", n), func(b *testing.B) {
			for b.Loop() {
				o.MulRows(x)
			}
		})
		q := o.Dense()
		out := make([]float64, n)
		b.Run(fmt.Sprintf("dense/%d", n), func(b *testing.B) {
			for b.Loop() {
				for r := 0; r < rows; r++ {
					clear(out)
					for i, xi := range x[r*n : (r+1)*n] {
						for j, v := range q[i*n : (i+1)*n] {
							out[j] += xi * v
						}
					}
				}
			}
		})
	}
}
