package quant

import (
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundScalesF16(t *testing.T) {
	// 1/3 in F16 is 0x3555 = 1365/4096; 2^-24 is F16's smallest subnormal.
	got, err := RoundScalesF16("w", []float32{1, float32(1) / 3, 0x1p-24, 65504})
	require.NoError(t, err)
	assert.Equal(t, []float32{1, float32(1365) / 4096, 0x1p-24, 65504}, got)

	_, err = RoundScalesF16("blk.1.wo", []float32{1, 1e5})
	require.ErrorContains(t, err, `tensor "blk.1.wo": scale 1 (100000)`)
	_, err = RoundScalesF16("w", []float32{1e-9})
	require.ErrorContains(t, err, "scale 0")

	// Quantizing with rounded scales: storing them as F16 loses nothing.
	w := testMatrix(20, 8, 64)
	s := Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}
	scales, zeros, err := SearchParams("w", w, 8, 64, s, SearchOptions{Method: SearchMSE})
	require.NoError(t, err)
	r, err := RoundScalesF16("w", scales)
	require.NoError(t, err)
	q, err := QuantizeWithParams("w", w, 8, 64, s, r, zeros)
	require.NoError(t, err)
	assert.Equal(t, q.Scales, tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(q.Scales)))
	st := Compare(w, Dequantize(q))
	assert.Greater(t, st.SQNRdB, 15.0) // still a sane 4-bit reconstruction
}
