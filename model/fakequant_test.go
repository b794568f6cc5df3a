package model

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFakeQuantWeightOnlyUsesDequantizedWeights(t *testing.T) {
	r := testutil.Rand(11)
	N, K, M := 6, 64, 3
	w := testutil.Gaussian(r, N*K, 1)
	x := testutil.Gaussian(r, M*K, 1)
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}
	q, err := quant.Quantize("w", w, N, K, s, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	fq, err := NewFakeQuant(q, nil, quant.ActNone, 0)
	require.NoError(t, err)
	got := make([]float32, M*N)
	fq.Forward(x, M, got)
	// Independent: dequantize level by level with the scheme's rule and multiply in float64.
	levels := q.Levels()
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			var ref float64
			for k := 0; k < K; k++ {
				sc, z := q.ScaleAt(n, k)
				ref += float64(x[m*K+k]) * float64(quant.DequantizeValue(levels[n*K+k], sc, z))
			}
			assert.InDelta(t, ref, float64(got[m*N+n]), 1e-4)
		}
	}
}

func TestFakeQuantPerTokenActivationsRoundToInt8Grid(t *testing.T) {
	// Identity weights: the output is the fake-quantized input times the diagonal's
	// dequantized value, so the int8 grid of each row can be read off.
	K := 4
	w := []float32{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}
	q, err := quant.Quantize("eye", w, K, K, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	fq, err := NewFakeQuant(q, nil, quant.ActDynamic, 0)
	require.NoError(t, err)
	x := []float32{1.27, 0.5, -0.013, 0.004, 2, -2, 1, 0}
	out := make([]float32, 8)
	fq.Forward(x, 2, out)
	wd := quant.Dequantize(q)[0] // the diagonal's dequantized value
	// row 0: scale 1.27/127 = 0.01 -> levels 127, 50, -1, 0; row 1: scale 2/127.
	s0, s1 := float32(1.27)/127, float32(2)/127
	want := []float32{127 * s0, 50 * s0, -1 * s0, 0, 127 * s1, -127 * s1, 64 * s1, 0}
	for i := range want {
		assert.InDelta(t, float64(want[i]*wd), float64(out[i]), 1e-6, "element %d", i)
	}
	_, err = NewFakeQuant(q, nil, quant.ActStatic, 0)
	assert.ErrorContains(t, err, "needs a positive amax")
}

// A FakeQuant built from a QTensor keeps it and dequantizes rows as the product reads them:
// its output equals the layer over the dequantized float32 matrix (NewFakeQuantDequantized)
// bit for bit, on the packed kernel (with a partial last panel and tail rows) and the
// scalar path, for 8-, 4- and 3-bit weights, symmetric and not, with and without fake int8
// activations; Weights is the dequantized matrix, also once q's memory changed.
func TestFakeQuantFromQTensorEqualsDequantized(t *testing.T) {
	r := testutil.Rand(12)
	N, K := 37, 96
	w := testutil.Gaussian(r, N*K, 1)
	bias := testutil.Gaussian(r, N, 1)
	schemes := []quant.Scheme{
		{Bits: 8, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 3, Granularity: quant.PerChannel},
	}
	for _, s := range schemes {
		q, err := quant.Quantize("w", w, N, K, s, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		deq := quant.Dequantize(q)
		for _, act := range []quant.ActMode{quant.ActNone, quant.ActDynamic} {
			fq, err := NewFakeQuant(q, bias, act, 0)
			require.NoError(t, err)
			assert.Nil(t, fq.W, "%s: no float32 copy held", s)
			assert.Equal(t, deq, fq.Weights(), "%s", s)
			ref, err := NewFakeQuantDequantized("w", deq, N, K, bias, act, 0)
			require.NoError(t, err)
			for _, M := range []int{1, 3, 4, 9} {
				x := testutil.Gaussian(r, M*K, 1)
				got, want := make([]float32, M*N), make([]float32, M*N)
				fq.Forward(x, M, got)
				ref.Forward(x, M, want)
				assert.Equal(t, want, got, "%s act %v, %d rows", s, act, M)
			}
		}
	}
	q, err := quant.Quantize("w", w, N, K, schemes[0], quant.SearchOptions{})
	require.NoError(t, err)
	deq := quant.Dequantize(q)
	fq, err := NewFakeQuant(q, nil, quant.ActNone, 0)
	require.NoError(t, err)
	clear(q.Data) // q may be a view of a mapping that goes away: the layer holds a copy
	q.Scales[0] *= 2
	assert.Equal(t, deq, fq.Weights())
	_, err = NewFakeQuant(q, bias[:3], quant.ActNone, 0)
	assert.ErrorContains(t, err, "bias has 3 entries, want 37")
}
