package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Published Student-t(5) quantiles (any statistics table): P(T <= t) = p.
func TestT5CDFMatchesTables(t *testing.T) {
	for _, c := range []struct{ t, p float64 }{
		{0, 0.5}, {1.476, 0.90}, {2.015, 0.95}, {2.571, 0.975}, {3.365, 0.99}, {4.032, 0.995}, {5.893, 0.999}, {6.869, 0.9995},
	} {
		assert.InDelta(t, c.p, t5CDF(c.t), 2e-4, "t=%v", c.t)
		assert.InDelta(t, 1-c.p, t5CDF(-c.t), 2e-4, "t=%v", -c.t)
	}
	// The series branch (phi < 0.5) and the closed form agree where they meet; the tail is
	// 1 at phi = pi/2 (t = 0) and increases with phi.
	assert.InEpsilon(t, 2/math.Pi*(0.5-2.0/3*math.Sin(1)+math.Sin(2)/12), t5Tail(0.5-1e-12), 1e-9)
	assert.InDelta(t, 1.0, t5Tail(math.Pi/2), 1e-15)
	prev := 0.0
	for phi := 0.001; phi < math.Pi/2; phi += 0.001 {
		v := t5Tail(phi)
		require.Greater(t, v, prev, "tail must increase with phi (phi=%v)", phi)
		prev = v
	}
}

func TestT5QuantileInvertsTail(t *testing.T) {
	for _, q := range []float64{0.9, 0.5, 0.05, 1e-3, 1e-6, 1e-9, 1e-12, math.Ldexp(1, -48)} {
		x := t5Quantile(q)
		got := 2 * (1 - t5CDF(x))
		if x > 50 { // 1 - CDF cancels: compare the tail directly
			got = t5Tail(math.Atan2(math.Sqrt(5), x))
		}
		assert.InEpsilon(t, q, got, 1e-9, "q=%v t=%v", q, x)
	}
}

// The table's linear interpolation stays within 1e-4 relative of the exact quantile at the
// middle of every cell, where it is worst.
func TestT5TableInterpolation(t *testing.T) {
	tab := t5Table()
	worst := 0.0
	for k := 0; k < tOctaves; k++ {
		for j := 0; j < tCells; j++ {
			q := math.Ldexp(1+(float64(j)+0.5)/tCells, -(k + 1))
			exact := t5Quantile(q)
			mid := float64(tab[k][j]+tab[k][j+1]) / 2
			worst = max(worst, math.Abs(mid-exact)/exact)
		}
	}
	assert.Less(t, worst, 1e-4)
}

// A million samples follow the distribution (Kolmogorov-Smirnov distance under the 0.1%
// critical value 1.95/sqrt(n)), with mean 0 and variance 5/3.
func TestT5SamplesFollowDistribution(t *testing.T) {
	tab := t5Table()
	r := rand.NewPCG(1, 2)
	const n = 1 << 20
	xs := make([]float64, n)
	var sum, sq float64
	for i := range xs {
		v := float64(t5Sample(tab, r.Uint64()))
		xs[i] = v
		sum += v
		sq += v * v
	}
	slices.Sort(xs)
	d := 0.0
	for i, x := range xs {
		c := t5CDF(x)
		d = max(d, math.Abs(c-float64(i)/n), math.Abs(c-float64(i+1)/n))
	}
	assert.Less(t, d, 1.95/math.Sqrt(n))
	assert.InDelta(t, 0, sum/n, 0.01)
	assert.InEpsilon(t, t5Var, sq/n, 0.03)
}

// Edge draws: all-zero and all-one bits land in the clamped far tail with the right sign;
// the value at q = 1 (the smallest draw magnitude) is 0.
func TestT5SampleEdges(t *testing.T) {
	tab := t5Table()
	top := tab[tOctaves-1][0]
	assert.Greater(t, float64(top), 100.0)
	assert.Equal(t, top, t5Sample(tab, 0))
	assert.Equal(t, -top, t5Sample(tab, 1<<63))
	assert.InDelta(t, 0, float64(t5Sample(tab, math.MaxUint64>>1)), 1e-6)
	assert.InDelta(t, 0, float64(tab[0][tCells]), 1e-12)
}
