package quant

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGemmF32(t *testing.T) {
	r := testutil.Rand(10)
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 7}, {16, 40, 64}, {2, 33, 100}} {
		M, N, K := sh[0], sh[1], sh[2]
		a, b := testutil.Gaussian(r, M*K, 1), testutil.Gaussian(r, N*K, 1)
		want, abs := naiveF64(a, b, nil, M, N, K)
		requireCloseGemm(t, GemmF32(a, b, M, N, K), want, abs, K)
	}
	// Hand case: [1 2; 3 4] * [5 6; 7 8]^T = [17 23; 39 53].
	assert.Equal(t, []float32{17, 23, 39, 53}, GemmF32([]float32{1, 2, 3, 4}, []float32{5, 6, 7, 8}, 2, 2, 2))
	assert.Nil(t, GemmF32(make([]float32, 3), make([]float32, 4), 2, 2, 2))
}

func TestGemmI8Exact(t *testing.T) {
	r := testutil.Rand(11)
	const M, N, K = 5, 9, 300
	a, b := make([]int8, M*K), make([]int8, N*K)
	for i := range a {
		a[i] = int8(r.IntN(256) - 128)
	}
	for i := range b {
		b[i] = int8(r.IntN(256) - 128)
	}
	for k := 0; k < K; k++ { // extremes: row 0 of a and b all -128 -> 300*16384
		a[k], b[k] = -128, -128
	}
	got := GemmI8(a, b, M, N, K)
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			var want int64
			for k := 0; k < K; k++ {
				want += int64(a[m*K+k]) * int64(b[n*K+k])
			}
			require.Equal(t, want, int64(got[m*N+n]), "(%d,%d)", m, n)
		}
	}
	assert.Equal(t, int32(300*16384), got[0])
	assert.Nil(t, GemmI8(a, b, M, N, K+1))
}

func TestGemmW8A8(t *testing.T) {
	const M, N, K = 6, 20, 96
	x, w, bias := gemmOperands(12, M, N, K)
	aq, as := QuantizeActivationsPerToken(x, M, K)
	for _, g := range []Granularity{PerChannel, PerTensor} {
		s := Scheme{Bits: 8, Symmetric: true, Granularity: g}
		q, err := Quantize("w", w, N, K, s, SearchOptions{})
		require.NoError(t, err)
		got, err := GemmW8A8(aq, as, M, q, bias)
		require.NoError(t, err)

		// Exactly the documented epilogue over the exact integer GEMM.
		levels := q.Levels()
		wl := make([]int8, len(levels))
		for i, v := range levels {
			wl[i] = int8(v)
		}
		acc := GemmI8(aq, wl, M, N, K)
		for m := 0; m < M; m++ {
			for n := 0; n < N; n++ {
				ws, _ := q.ScaleAt(n, 0)
				v := float32(acc[m*N+n]) * as[m]
				v = v * ws
				v = v + bias[n]
				require.Equal(t, v, got[m*N+n], "(%d,%d)", m, n)
			}
		}

		// And equal, within rounding, to the float GEMM of the dequantized operands.
		da := make([]float32, len(aq))
		for i, v := range aq {
			da[i] = float32(v) * as[i/K]
		}
		want, abs := naiveF64(da, Dequantize(q), bias, M, N, K)
		requireCloseGemm(t, got, want, abs, K)

		noBias, err := GemmW8A8(aq, as, M, q, nil)
		require.NoError(t, err)
		require.InDelta(t, float64(got[0]-bias[0]), float64(noBias[0]), 1e-5)
	}
}

func TestGemmW4A16(t *testing.T) {
	const M, N, K = 4, 24, 128
	a, w, bias := gemmOperands(13, M, N, K)
	for _, s := range []Scheme{
		{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 32},
		{Bits: 4, Granularity: PerGroup, GroupSize: 64},
		{Bits: 4, Symmetric: true, Granularity: PerChannel},
	} {
		q, err := Quantize("w", w, N, K, s, SearchOptions{Method: SearchMSE})
		require.NoError(t, err)
		got, err := GemmW4A16(a, M, q, bias)
		require.NoError(t, err)
		// Same arithmetic as the float32 GEMM on the dequantized weights, bit for bit.
		ref := GemmF32(a, Dequantize(q), M, N, K)
		for i := range ref {
			ref[i] = ref[i] + bias[i%N]
		}
		assert.Equal(t, ref, got, s.String())
		want, abs := naiveF64(a, Dequantize(q), bias, M, N, K)
		requireCloseGemm(t, got, want, abs, K)
	}
}

func TestGemmErrors(t *testing.T) {
	w := make([]float32, 4*8)
	w[0] = 1
	q4, err := Quantize("blk.wq", w, 4, 8, Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel}, SearchOptions{})
	require.NoError(t, err)
	q8g, err := Quantize("blk.wq", w, 4, 8, Scheme{Bits: 8, Symmetric: true, Granularity: PerGroup, GroupSize: 4}, SearchOptions{})
	require.NoError(t, err)
	q8a, err := Quantize("blk.wq", w, 4, 8, Scheme{Bits: 8, Granularity: PerChannel}, SearchOptions{})
	require.NoError(t, err)
	q8, err := Quantize("blk.wq", w, 4, 8, Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, SearchOptions{})
	require.NoError(t, err)
	aq, as := make([]int8, 2*8), []float32{1, 1}

	for _, bad := range []*QTensor{q4, q8g, q8a} {
		_, err = GemmW8A8(aq, as, 2, bad, nil)
		require.ErrorContains(t, err, `"blk.wq": weights must be 8-bit symmetric`)
	}
	_, err = GemmW8A8(aq[:15], as, 2, q8, nil)
	require.ErrorContains(t, err, "15 activations for 2 tokens x 8 inputs")
	_, err = GemmW8A8(aq, as[:1], 2, q8, nil)
	require.ErrorContains(t, err, "1 activation scales for 2 tokens")
	_, err = GemmW8A8(aq, as, 2, q8, []float32{1, 2})
	require.ErrorContains(t, err, "bias has 2 entries for 4 outputs")
	_, err = GemmW8A8(aq, as, 2, nil, nil)
	require.ErrorContains(t, err, "nil QTensor")

	_, err = GemmW4A16(make([]float32, 16), 2, q8, nil)
	require.ErrorContains(t, err, "weights must be 4-bit")
	for bits := MinBits; bits <= MaxBits; bits++ {
		if bits == 4 {
			continue
		}
		qb, err := Quantize("blk.wq", w, 4, 8, Scheme{Bits: bits, Granularity: PerGroup, GroupSize: 4}, SearchOptions{})
		require.NoError(t, err)
		_, err = GemmW4A16(make([]float32, 16), 2, qb, nil)
		require.ErrorContains(t, err, fmt.Sprintf(`"blk.wq": weights must be 4-bit, not w%dg4a (no integer GEMM`, bits))
		_, err = GemmW8A8(aq, as, 2, qb, nil)
		require.ErrorContains(t, err, `"blk.wq": weights must be 8-bit symmetric`)
	}
	_, err = GemmW4A16(make([]float32, 15), 2, q4, nil)
	require.ErrorContains(t, err, "15 activations")
	broken := *q4
	broken.Data = broken.Data[:3]
	_, err = GemmW4A16(make([]float32, 16), 2, &broken, nil)
	require.ErrorContains(t, err, "data bytes")
}
