package model

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRMSNormHandComputed(t *testing.T) {
	// rows (3, 4) and (0, 2); mean squares 12.5 and 2; eps 0.
	x := []float32{3, 4, 0, 2}
	w := []float32{1, 2}
	o := make([]float32, 4)
	rmsNorm(o, x, w, 2, 2, 0)
	r1, r2 := 1/math.Sqrt(12.5), 1/math.Sqrt(2)
	assert.InDeltaSlice(t, []float64{3 * r1, 8 * r1, 0, 4 * r2}, f64(o), 1e-6)
}

func TestRopePositionZeroIsIdentityAndRotationsPreserveNorm(t *testing.T) {
	const hd = 8
	cos, sin := ropeTable(50, hd, 10000)
	v := testutil.Gaussian(testutil.Rand(1), hd, 1)
	for _, rot := range []func(v, c, s []float32){ropeHalf, ropeInterleaved} {
		w := append([]float32(nil), v...)
		rot(w, cos[:hd/2], sin[:hd/2])
		assert.Equal(t, v, w, "position 0 must be the identity")
		for pos := 1; pos < 50; pos++ {
			w := append([]float32(nil), v...)
			rot(w, cos[pos*hd/2:(pos+1)*hd/2], sin[pos*hd/2:(pos+1)*hd/2])
			assert.InDelta(t, norm(v), norm(w), 1e-5, "position %d", pos)
		}
	}
}

func TestRopeHandComputedPairs(t *testing.T) {
	// head dim 4, theta 100: pair 0 has frequency 1, pair 1 has 100^(-1/2) = 0.1.
	cos, sin := ropeTable(3, 4, 100)
	p := 2
	cs, sn := cos[p*2:(p+1)*2], sin[p*2:(p+1)*2]
	c0, s0, c1, s1 := math.Cos(2), math.Sin(2), math.Cos(0.2), math.Sin(0.2)
	// rotate_half pairs (0,2) and (1,3).
	v := []float32{1, 0, 0, 1}
	ropeHalf(v, cs, sn)
	assert.InDeltaSlice(t, []float64{c0, -s1, s0, c1}, f64(v), 1e-6)
	// interleaved pairs (0,1) and (2,3).
	v = []float32{1, 0, 0, 1}
	ropeInterleaved(v, cs, sn)
	assert.InDeltaSlice(t, []float64{c0, s0, -s1, c1}, f64(v), 1e-6)
}

func TestSoftmaxAndSilu(t *testing.T) {
	for _, exp64 := range []bool{false, true} {
		x := []float32{0, float32(math.Log(3))}
		softmaxInPlace(x, exp64)
		assert.InDeltaSlice(t, []float64{0.25, 0.75}, f64(x), 1e-7)
		assert.InDelta(t, 1/(1+math.Exp(-1)), float64(silu(1, exp64)), 1e-7)
		assert.Equal(t, float32(0), silu(0, exp64))
		// Far-apart scores: the small ones underflow to 0 without disturbing the rest.
		y := []float32{-200, 0, -1e30}
		softmaxInPlace(y, exp64)
		assert.Equal(t, []float32{0, 1, 0}, y)
		assert.Equal(t, float32(0), silu(-200, exp64))
		assert.Equal(t, float32(200), silu(200, exp64))
	}
}

func TestMatmulMatchesNaiveForAwkwardShapes(t *testing.T) {
	r := testutil.Rand(3)
	for _, s := range [][3]int{{1, 1, 1}, {3, 5, 7}, {37, 33, 65}, {64, 70, 9}} {
		M, N, K := s[0], s[1], s[2]
		x, w := testutil.Gaussian(r, M*K, 1), testutil.Gaussian(r, N*K, 1)
		got := make([]float32, M*N)
		matmulT(got, x, w, M, N, K)
		for m := 0; m < M; m++ {
			for n := 0; n < N; n++ {
				var ref float64
				for k := 0; k < K; k++ {
					ref += float64(x[m*K+k]) * float64(w[n*K+k])
				}
				require.InDelta(t, ref, float64(got[m*N+n]), 1e-4, "shape %v at (%d,%d)", s, m, n)
			}
		}
	}
}

func f64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
