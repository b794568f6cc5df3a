package quant

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBlockRecipes(t *testing.T) {
	g32 := func(bits int, sym bool) Scheme {
		return Scheme{Bits: bits, Symmetric: sym, Granularity: PerGroup, GroupSize: 32}
	}
	cases := map[string]Recipe{
		"q8_0":       {Weight: g32(8, true), Block: BlockQ8_0},
		"Q4_0":       {Weight: g32(4, true), Block: BlockQ4_0},
		"q4_1":       {Weight: g32(4, false), Block: BlockQ4_1},
		"q5_0+rtn":   {Weight: g32(5, true), Block: BlockQ5_0, Rounding: RoundRTN},
		"q5_1":       {Weight: g32(5, false), Block: BlockQ5_1},
		" q4_K+GPTQ": {Weight: g32(4, false), Block: BlockQ4_K, Rounding: RoundGPTQ},
		"q6_k+ref":   {Weight: Scheme{Bits: 6, Symmetric: true, Granularity: PerGroup, GroupSize: 16}, Block: BlockQ6_K, Rounding: RoundRef},
	}
	for s, want := range cases {
		got, err := ParseRecipe(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
		back, err := ParseRecipe(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, back, "canonical name %s parses back", got.String())
	}
	assert.Equal(t, "q4_k+gptq", cases[" q4_K+GPTQ"].String())
	assert.NotEqual(t, mustRecipe(t, "q4_0"), mustRecipe(t, "w4g32"), "a block format is its own recipe")
	for _, bad := range []string{"q3_k", "q2_k", "q8_1", "q4_0a8", "q4_0g32", "q4_k+awq", "w4g32+ref", "w16+ref", "q4_k+"} {
		_, err := ParseRecipe(bad)
		assert.Error(t, err, bad)
	}
}

func TestBlockBitsAreLlamaCppAccounting(t *testing.T) {
	// ggml's block bytes * 8 / block size, independent of the scale width asked for.
	want := map[string]float64{"q8_0": 8.5, "q4_0": 4.5, "q4_1": 5, "q5_0": 5.5, "q5_1": 6, "q4_k": 4.5, "q6_k": 6.5625}
	for name, bpw := range want {
		r := mustRecipe(t, name)
		assert.Equal(t, bpw, r.Bits(256, 512, 16), name)
		assert.Equal(t, bpw, r.Bits(256, 512, 32), name)
		assert.Equal(t, int64(bpw*256*512), r.CostBits(256, 512, 16), name)
	}
	// For never refits a block's fixed run of inputs, whatever the width.
	assert.Equal(t, 32, mustRecipe(t, "q4_0").For(172).GroupSize)
	assert.Equal(t, 16, mustRecipe(t, "q6_k").For(64).GroupSize)
}

func TestBlockNames(t *testing.T) {
	for _, b := range Blocks() {
		got, err := ParseBlock(b.String())
		require.NoError(t, err)
		assert.Equal(t, b, got)
		assert.Equal(t, b.KQuant(), b.Size() == 256, b.String())
		require.NoError(t, b.Scheme().Validate())
	}
	_, err := ParseBlock("q3_k")
	assert.ErrorContains(t, err, "q3_k")
}
