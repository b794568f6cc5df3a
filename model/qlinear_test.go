package model

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The integer kernels compute the same function as the fake-quantized layer (dequantized
// weights, and for W8A8 dequantized activations) up to float32 summation order.
func TestQuantLinearMatchesFakeQuant(t *testing.T) {
	r := testutil.Rand(21)
	N, K, M := 12, 72, 5 // K = 72 is not a multiple of 32: the padded path
	w := testutil.Gaussian(r, N*K, 0.2)
	bias := testutil.Gaussian(r, N, 0.1)
	x := testutil.StudentT(r, M*K, 4)
	opt := quant.SearchOptions{Method: quant.SearchMax}
	for _, tc := range []struct {
		s   quant.Scheme
		act quant.ActMode
	}{
		{quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.ActDynamic},
		{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, quant.ActNone},
		{quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}, quant.ActNone},
	} {
		ql, err := NewQuantLinear("l", w, bias, N, K, tc.s, opt)
		require.NoError(t, err)
		// Fake-quant reference on the same padded levels, trimmed.
		deq := quant.Dequantize(ql.Q)
		kp := ql.Q.Cols
		trim := make([]float32, N*K)
		for n := 0; n < N; n++ {
			copy(trim[n*K:(n+1)*K], deq[n*kp:n*kp+K])
		}
		fq, err := NewFakeQuantDequantized("l", trim, N, K, bias, tc.act, 0)
		require.NoError(t, err)
		got, want := make([]float32, M*N), make([]float32, M*N)
		ql.Forward(x, M, got)
		fq.Forward(x, M, want)
		assert.Less(t, maxAbsDiff(want, got), 1e-4, "%s", tc.s)
	}
	_, err := NewQuantLinear("l", w, nil, N, K, quant.Scheme{Bits: 8, Granularity: quant.PerChannel}, opt)
	assert.ErrorContains(t, err, "no integer kernel for w8c")
}
