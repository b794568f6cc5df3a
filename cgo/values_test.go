package cgo

// Test inputs and measures shared by the host checks and the cuda-tagged kernel tests.

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// f16Values returns n Gaussian values rounded to F16 (so the device sees exactly them).
func f16Values(seed uint64, n int, sigma float64) []float32 {
	v := testutil.Gaussian(testutil.Rand(seed), n, sigma)
	return tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(v))
}

// relFrobenius is the relative Frobenius error |got - want| / |want| (the absolute one
// when want is all zeros).
func relFrobenius(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// quantize4 makes a 4-bit QTensor the way `autoq quantize` does (quant.Quantize).
func quantize4(t testing.TB, N, K int, s quant.Scheme, seed uint64) *quant.QTensor {
	t.Helper()
	w := testutil.Gaussian(testutil.Rand(seed), N*K, 0.05)
	q, err := quant.Quantize("blk.0.w", w, N, K, s, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	return q
}
