package layout

// Weights and schemes shared by the layout tests.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
)

// quantizeGaussian quantizes an [N, K] weight of Gaussian values (seed, sigma) named name
// with s the way `autoq quantize` does (quant.Quantize, max search).
func quantizeGaussian(t testing.TB, name string, N, K int, s quant.Scheme, seed uint64, sigma float64) *quant.QTensor {
	t.Helper()
	w := testutil.Gaussian(testutil.Rand(seed), N*K, sigma)
	q, err := quant.Quantize(name, w, N, K, s, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	return q
}

// quantize4 makes a 4-bit weight of a model's scale (sigma 0.05).
func quantize4(t testing.TB, N, K int, s quant.Scheme, seed uint64) *quant.QTensor {
	t.Helper()
	return quantizeGaussian(t, "blk.0.w", N, K, s, seed, 0.05)
}

// w4Schemes are the schemes the W4A16 layouts are checked with.
var w4Schemes = []quant.Scheme{
	{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
	{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 64},
	{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128},
	{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
	{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 128},
	{Bits: 4, Symmetric: true, Granularity: quant.PerChannel},
	{Bits: 4, Symmetric: false, Granularity: quant.PerChannel},
	{Bits: 4, Symmetric: true, Granularity: quant.PerTensor},
}
