package quant

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFitCols(t *testing.T) {
	g := func(n int) Scheme { return Scheme{Bits: 4, Granularity: PerGroup, GroupSize: n} }
	ch := Scheme{Bits: 4, Granularity: PerChannel}
	for _, c := range []struct {
		in   Scheme
		cols int
		want Scheme
	}{
		{g(32), 4096, g(32)}, // divides: unchanged
		{g(32), 172, g(43)},  // 172 = 4 * 43: next divisor above 32
		{g(64), 172, g(86)},  // 172 = 2 * 86
		{g(128), 172, ch},    // no divisor of 172 in (128, 172): per channel
		{g(64), 64, ch},      // a group as wide as the row is per channel
		{g(128), 64, ch},     // wider than the row
		{g(16), 17, ch},      // prime width
		{ch, 172, ch},        // not group-wise: unchanged
		{Scheme{Bits: 8, Granularity: PerTensor}, 7, Scheme{Bits: 8, Granularity: PerTensor}},
	} {
		got := c.in.FitCols(c.cols)
		assert.Equal(t, c.want, got, "%s on %d columns", c.in, c.cols)
		_, _, err := got.GroupCols(c.cols)
		assert.NoError(t, err, "a fitted scheme always divides its row")
	}
}
