package model

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ulpsOff is |got - want| in units of the last place of float32 at want (want exact, in
// float64); for subnormal results the unit is the smallest subnormal.
func ulpsOff(got float32, want float64) float64 {
	w := float32(want)
	ulp := float64(math.Nextafter32(w, float32(math.Inf(1))) - w)
	if a := math.Abs(want); a < 0x1p-126 || math.IsInf(float64(w), 0) {
		ulp = 0x1p-149
	}
	return math.Abs(float64(got)-want) / ulp
}

// expf stays within 2 ulps of e^x (math.Exp in float64) on every 997th float32 of the
// range where the result is a normal float32, and within 1 subnormal step below it.
func TestExpfAccuracy(t *testing.T) {
	lo, hi := math.Float32bits(-103.9), math.Float32bits(88.7)
	worst, worstAt := 0.0, float32(0)
	check := func(x float32) {
		want := math.Exp(float64(x))
		got := expf(x)
		d := ulpsOff(got, want)
		if want < 0x1p-126 {
			require.LessOrEqual(t, math.Abs(float64(got)-want), 0x1p-149, "x=%v", x)
			return
		}
		if d > worst {
			worst, worstAt = d, x
		}
	}
	for b := uint32(0); b <= hi; b += 997 { // non-negative x
		check(math.Float32frombits(b))
	}
	for b := uint32(0x80000000); b <= lo; b += 997 { // negative x
		check(math.Float32frombits(b))
	}
	t.Logf("worst error %.3f ulps at x=%v", worst, worstAt)
	require.LessOrEqual(t, worst, 2.0, "at x=%v", worstAt)
}

// The edges: exact points, overflow, underflow and NaN.
func TestExpfSpecialValues(t *testing.T) {
	assert.Equal(t, float32(1), expf(0))
	assert.Equal(t, float32(1), expf(float32(math.Copysign(0, -1))))
	assert.InDelta(t, math.E, float64(expf(1)), 2e-7)
	assert.Equal(t, float32(math.Inf(1)), expf(89))
	assert.Equal(t, float32(math.Inf(1)), expf(float32(math.Inf(1))))
	assert.Equal(t, float32(math.Inf(1)), expf(88.72283935546875), "e^x rounds above MaxFloat32")
	assert.Equal(t, float32(math.Exp(88.72283172607422)), expf(88.72283172607422), "largest finite result")
	assert.Equal(t, float32(0), expf(-104))
	assert.Equal(t, float32(0), expf(float32(math.Inf(-1))))
	assert.Equal(t, float32(0x1p-149), expf(-103.2789))
	assert.True(t, math.IsNaN(float64(expf(float32(math.NaN())))))
}

// go test -run '^$' -bench Exp -cpu 1 ./model: expf against math.Exp in float64 on
// softmax-like arguments (scores minus their max, in [-20, 0]).
func BenchmarkExp(b *testing.B) {
	xs := make([]float32, 4096)
	for i := range xs {
		xs[i] = -20 * float32(i) / float32(len(xs))
	}
	out := make([]float32, len(xs))
	b.Run("math.Exp", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			for i, x := range xs {
				out[i] = float32(math.Exp(float64(x)))
			}
		}
		cpu.Report(b, float64(len(xs))/1e6, "Mexp")
	})
	b.Run("expInPlace", func(b *testing.B) {
		cpu := testutil.StartCPU()
		for b.Loop() {
			copy(out, xs)
			expInPlace(out)
		}
		cpu.Report(b, float64(len(xs))/1e6, "Mexp")
	})
}
