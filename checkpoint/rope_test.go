package checkpoint

import (
	"math"
	"sort"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPermuteRoPEIsABijectionWithInverse(t *testing.T) {
	const heads, hd, cols = 3, 6, 2
	rows := heads * hd
	v := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		v[r*cols] = float32(r) // column 0 labels the row
		v[r*cols+1] = float32(-r)
	}
	w := tensor.FromF32(v, rows, cols)
	p := PermuteRoPE(w, heads)
	var labels []int
	for r := 0; r < rows; r++ {
		labels = append(labels, int(p.F32()[r*cols]))
		assert.Equal(t, -p.F32()[r*cols], p.F32()[r*cols+1], "rows move whole")
	}
	// Head 0 by hand: interleaved pairs (0,1),(2,3),(4,5) -> firsts then seconds.
	assert.Equal(t, []int{0, 2, 4, 1, 3, 5}, labels[:6])
	assert.Equal(t, []int{6, 8, 10, 7, 9, 11}, labels[6:12])
	sorted := append([]int(nil), labels...)
	sort.Ints(sorted)
	for i := range sorted {
		assert.Equal(t, i, sorted[i], "every row appears once")
	}
	assert.Equal(t, v, UnpermuteRoPE(p, heads).F32())
}

// ropeInterleaved rotates pairs (x[2i], x[2i+1]) of one head (llama2.c, Meta).
func ropeInterleaved(x []float64, pos int, theta float64) []float64 {
	return rotatePairs(x, pos, theta, func(i, _ int) (int, int) { return 2 * i, 2*i + 1 })
}

// ropeHalf is Hugging Face's rotate_half RoPE: pairs (x[i], x[i+hd/2]).
func ropeHalf(x []float64, pos int, theta float64) []float64 {
	return rotatePairs(x, pos, theta, func(i, hd int) (int, int) { return i, i + hd/2 })
}

// rotatePairs is RoPE at position pos on one head x: frequency i rotates the pair of
// elements pair(i, head dim) names by the angle pos * theta^(-2i/hd).
func rotatePairs(x []float64, pos int, theta float64, pair func(i, hd int) (int, int)) []float64 {
	hd := len(x)
	out := make([]float64, hd)
	for i := 0; i < hd/2; i++ {
		a := float64(pos) * math.Pow(theta, -float64(2*i)/float64(hd))
		c, s := math.Cos(a), math.Sin(a)
		p, q := pair(i, hd)
		out[p] = x[p]*c - x[q]*s
		out[q] = x[p]*s + x[q]*c
	}
	return out
}

func matvecHead(w []float32, cols, head, hd int, x []float64) []float64 {
	out := make([]float64, hd)
	for r := 0; r < hd; r++ {
		for c := 0; c < cols; c++ {
			out[r] += float64(w[(head*hd+r)*cols+c]) * x[c]
		}
	}
	return out
}

// TestPermutedWeightsGiveSameAttentionScores checks the point of the permutation: for every
// head, the score q(m).k(n) computed the llama2.c way (original weights, interleaved RoPE)
// equals the Hugging Face way (permuted weights, rotate_half RoPE).
func TestPermutedWeightsGiveSameAttentionScores(t *testing.T) {
	const dim, heads, kvHeads, theta = 16, 4, 2, 10000.0
	hd := dim / heads
	r := testutil.Rand(7)
	wq := tensor.FromF32(testutil.Gaussian(r, dim*dim, 1), dim, dim)
	wk := tensor.FromF32(testutil.Gaussian(r, kvHeads*hd*dim, 1), kvHeads*hd, dim)
	x := make([]float64, dim)
	y := make([]float64, dim)
	for i := range x {
		x[i], y[i] = r.NormFloat64(), r.NormFloat64()
	}
	hq, hk := PermuteRoPE(wq, heads), PermuteRoPE(wk, kvHeads)
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return
	}
	for h := 0; h < heads; h++ {
		kh := h / (heads / kvHeads)
		for _, pos := range [][2]int{{0, 0}, {5, 2}, {17, 3}} {
			meta := dot(ropeInterleaved(matvecHead(wq.F32(), dim, h, hd, x), pos[0], theta), ropeInterleaved(matvecHead(wk.F32(), dim, kh, hd, y), pos[1], theta))
			hf := dot(ropeHalf(matvecHead(hq.F32(), dim, h, hd, x), pos[0], theta), ropeHalf(matvecHead(hk.F32(), dim, kh, hd, y), pos[1], theta))
			require.InDelta(t, meta, hf, 1e-9*(1+math.Abs(meta)), "head %d positions %v", h, pos)
		}
	}
	// And without the permutation the scores differ (the test can fail).
	meta := dot(ropeInterleaved(matvecHead(wq.F32(), dim, 1, hd, x), 5, theta), ropeInterleaved(matvecHead(wk.F32(), dim, 0, hd, y), 2, theta))
	wrong := dot(ropeHalf(matvecHead(wq.F32(), dim, 1, hd, x), 5, theta), ropeHalf(matvecHead(wk.F32(), dim, 0, hd, y), 2, theta))
	assert.Greater(t, math.Abs(meta-wrong), 1e-6)
}
