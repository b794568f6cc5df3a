package autoquant

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTimingDistinct(t *testing.T) {
	a := timingOf([]float64{10, 12, 11})
	assert.Equal(t, Timing{Median: 11, Min: 10, Max: 12}, a)
	assert.False(t, a.Distinct(timingOf([]float64{11.5, 13, 14})), "overlapping runs")
	assert.True(t, a.Distinct(timingOf([]float64{12.5, 13, 14})), "separate runs")
	assert.True(t, timingOf([]float64{5, 6}).Distinct(a))

	var p BenchPoint
	p.Variants = append(p.Variants, p.newVariant("fp32", a, 100))
	assert.Equal(t, 1.0, p.Variants[0].Speedup)
	assert.False(t, p.Variants[0].WithinNoise)
	noisy := p.newVariant("w8a8", timingOf([]float64{9, 10.5, 13}), 100)
	assert.True(t, noisy.WithinNoise)
	assert.InDelta(t, 11/10.5, noisy.Speedup, 1e-12)
	fast := p.newVariant("w4", timingOf([]float64{5, 5.5, 6}), 100)
	assert.False(t, fast.WithinNoise)
	assert.InDelta(t, 2.0, fast.Speedup, 1e-12)
}
