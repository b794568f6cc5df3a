package quant

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustRecipe(t testing.TB, s string) Recipe {
	c, err := ParseRecipe(s)
	require.NoError(t, err)
	return c
}

func TestParseRecipe(t *testing.T) {
	cases := map[string]Recipe{
		"w16":           FullPrecision,
		"w8":            {Weight: Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}},
		"w8ca":          {Weight: Scheme{Bits: 8, Granularity: PerChannel}},
		"w8t":           {Weight: Scheme{Bits: 8, Symmetric: true, Granularity: PerTensor}},
		"w4g128":        {Weight: Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 128}},
		"w4":            {Weight: Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel}},
		"w4g32a":        {Weight: Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}},
		"w8a8":          {Weight: Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, Act: ActDynamic},
		"w8a8s":         {Weight: Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, Act: ActStatic},
		" W4G32A+GPTQ ": {Weight: Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}, Rounding: RoundGPTQ},
		"w8+rtn":        {Weight: Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, Rounding: RoundRTN},
		"w6g32a":        {Weight: Scheme{Bits: 6, Granularity: PerGroup, GroupSize: 32}},
		"w6":            {Weight: Scheme{Bits: 6, Symmetric: true, Granularity: PerChannel}},
		"w5c":           {Weight: Scheme{Bits: 5, Symmetric: true, Granularity: PerChannel}},
		"w5g32a+gptq":   {Weight: Scheme{Bits: 5, Granularity: PerGroup, GroupSize: 32}, Rounding: RoundGPTQ},
		"w3g128":        {Weight: Scheme{Bits: 3, Symmetric: true, Granularity: PerGroup, GroupSize: 128}},
		"w3ta":          {Weight: Scheme{Bits: 3, Granularity: PerTensor}},
		"w7g64":         {Weight: Scheme{Bits: 7, Symmetric: true, Granularity: PerGroup, GroupSize: 64}},
	}
	checkParseRecipe(t, cases)
	for _, bad := range []string{"", "w2", "w1g32", "w9", "w12", "w32", "w6a8", "w5a8s", "w3g32a8", "w4a8", "w16g32", "w4g0", "int4", "w8a8x", "w8a8dyn", "w16+gptq", "w4+awq", "w4g32a+"} {
		_, err := ParseRecipe(bad)
		assert.Error(t, err, bad)
	}
}

func TestBitsFormula(t *testing.T) {
	// Hand-computed from bits = b + (S + Z)/G with S = 16.
	assert.Equal(t, 4.125, mustRecipe(t, "w4g128").Bits(4096, 4096, 16))
	assert.Equal(t, 4.0+20.0/128, mustRecipe(t, "w4g128a").Bits(4096, 4096, 16))
	assert.Equal(t, 4.5, mustRecipe(t, "w4g32").Bits(64, 64, 16))
	assert.Equal(t, 8.25, mustRecipe(t, "w8").Bits(64, 64, 16))
	assert.Equal(t, 8.5, mustRecipe(t, "w8a8").Bits(64, 64, 16)) // F32 scales for W8A8
	assert.Equal(t, 8+24.0/64, mustRecipe(t, "w8ca").Bits(64, 64, 16))
	assert.Equal(t, 8+16.0/4096, mustRecipe(t, "w8t").Bits(64, 64, 16))
	assert.Equal(t, 16.0, FullPrecision.Bits(64, 64, 16))
	assert.Equal(t, 5.0, mustRecipe(t, "w4g32").Bits(64, 64, 32)) // F32 scales
	// Group sizes that do not divide the row are fitted (172 = 4 * 43).
	g := func(n int) Scheme {
		return Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: n}
	}
	ch := Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel}
	assert.Equal(t, g(43), g(32).FitCols(172))
	assert.Equal(t, ch, g(128).FitCols(172))
	assert.Equal(t, ch, g(128).FitCols(64))
	assert.Equal(t, ch, g(64).FitCols(64))
	assert.Equal(t, g(32), g(32).FitCols(64))
	assert.Equal(t, 4+16.0/64, mustRecipe(t, "w4g128").Bits(64, 64, 16))
	assert.Equal(t, 4+16.0/43, mustRecipe(t, "w4g32").Bits(64, 172, 16))
	// The other widths: b + (S + Z)/G with Z = b for asymmetric schemes.
	assert.Equal(t, 6+22.0/32, mustRecipe(t, "w6g32a").Bits(64, 64, 16))
	assert.Equal(t, 6.5, mustRecipe(t, "w6g32").Bits(64, 64, 16))
	assert.Equal(t, 5.25, mustRecipe(t, "w5c").Bits(64, 64, 16))
	assert.Equal(t, 5+21.0/43, mustRecipe(t, "w5g32a").Bits(64, 172, 16))
	assert.Equal(t, 3+19.0/32, mustRecipe(t, "w3g32a").Bits(64, 64, 16))
	assert.Equal(t, 7+16.0/128, mustRecipe(t, "w7g128").Bits(64, 4096, 16))
	// CostBits is the same count in whole bits: 64x64 w6g32a = 4096*6 + 128 groups*(16+6).
	assert.Equal(t, int64(4096*6+128*22), mustRecipe(t, "w6g32a").CostBits(64, 64, 16))
	assert.Equal(t, int64(64*172*3+64*4*(16+3)), mustRecipe(t, "w3g32a").CostBits(64, 172, 16))
}

func TestParseRecipeRefusesInt8ActivationsBelow8Bits(t *testing.T) {
	for _, s := range []string{"w6a8", "w4g32a8s", "w3ca8"} {
		_, err := ParseRecipe(s)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), "int8 activations need 8-bit weights", s)
	}
}

func TestValidateWidths(t *testing.T) {
	for b := -1; b <= 10; b++ {
		err := Scheme{Bits: b, Symmetric: true, Granularity: PerChannel}.Validate()
		if b >= 3 && b <= 8 {
			assert.NoError(t, err, "bits %d", b)
		} else {
			assert.ErrorContains(t, err, "bits must be 3 to 8", "bits %d", b)
		}
	}
}

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
	checkParseRecipe(t, cases)
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

// checkParseRecipe requires ParseRecipe to give each name's recipe, and the recipe's
// canonical name to parse back to it.
func checkParseRecipe(t *testing.T, cases map[string]Recipe) {
	t.Helper()
	for s, want := range cases {
		got, err := ParseRecipe(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
		back, err := ParseRecipe(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, back, "canonical name %s parses back", got.String())
	}
}
