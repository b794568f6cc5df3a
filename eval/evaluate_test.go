package eval

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSpec(t *testing.T) {
	cases := map[string]Spec{
		"w8":      {Name: "w8", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}}},
		"w8t":     {Name: "w8t", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerTensor}}},
		"w4g32":   {Name: "w4g32", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}}},
		"w4g128a": {Name: "w4g128a", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 128}}},
		"w8a8":    {Name: "w8a8", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, Act: quant.ActDynamic}},
		"W8A8s":   {Name: "w8a8s", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, Act: quant.ActStatic}},
		"w8aa8":   {Name: "w8aa8", Recipe: quant.Recipe{Weight: quant.Scheme{Bits: 8, Granularity: quant.PerChannel}, Act: quant.ActDynamic}},
	}
	for s, want := range cases {
		got, err := ParseSpec(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, bad := range []string{"w2", "w9", "w6a8", "w8g0", "int8", "w4g32b", "", "w16", "w4a8"} {
		_, err := ParseSpec(bad)
		assert.Error(t, err, bad)
	}
}

type stories struct {
	m   *model.Model
	tok tokenizer.Tokenizer
}

func loadStories(t *testing.T) stories {
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	tok, err := tokenizer.Load(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	return stories{m, tok}
}

func (s stories) windows(t *testing.T, split string, tokens int) *Windows {
	w, err := OpenWindows(testutil.SharedData(t, "tinystories_val.txt"), s.tok, 512,
		DataOptions{SeqLen: 128, MaxTokens: tokens, Split: split})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func (s stories) eval(t *testing.T, ref Forwarder, tokens int) Result {
	r, err := Evaluate(s.m, ref, s.windows(t, "eval", tokens), Options{Vocab: 512, BOS: 1, Batch: 4})
	require.NoError(t, err)
	return r
}

func TestRealModelPerplexityAndSelfComparison(t *testing.T) {
	s := loadStories(t)
	ref, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	r := s.eval(t, ref, 4096)
	assert.Equal(t, 4096, r.Tokens)
	assert.Equal(t, 32, r.Windows)
	// A 260K-parameter model on its own training distribution: far better than uniform
	// (512) and than a unigram model, but not near 1.
	assert.Greater(t, r.Perplexity, 2.0)
	assert.Less(t, r.Perplexity, 20.0)
	assert.InDelta(t, 0, r.KL, 1e-12)
	assert.Equal(t, 1.0, r.Top1)
	assert.Equal(t, r.Perplexity, r.RefPPL)
}

func TestFakeQuantizedModelsLoseALittleOrMore(t *testing.T) {
	s := loadStories(t)
	ref, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	fp := s.eval(t, nil, 4096).Perplexity
	run := func(name string) Result {
		sp, err := ParseSpec(name)
		require.NoError(t, err)
		s.m.ResetLinears()
		require.NoError(t, Apply(s.m, sp, quant.SearchOptions{Method: quant.SearchMax}, nil))
		return s.eval(t, ref, 4096)
	}
	w8 := run("w8")
	assert.InDelta(t, fp, w8.Perplexity, 0.01*fp, "int8 per channel costs well under 1%%")
	assert.Greater(t, w8.Top1, 0.97)
	w4 := run("w4g32")
	assert.Greater(t, w4.Perplexity, w8.Perplexity)
	assert.Greater(t, w4.KL, 10*w8.KL)
	w4a := run("w4g32a")
	assert.Less(t, w4a.KL, w4.KL, "asymmetric int4 fits these weights better")
	assert.Equal(t, fp, w8.RefPPL)
}

// Static activation quantization needs every layer's threshold; a missing one is an error
// naming the layer. (Calibration itself is calibrun's: LayerThresholds.)
func TestApplyStaticNeedsEveryAmax(t *testing.T) {
	s := loadStories(t)
	amax := map[string]float32{}
	for _, n := range s.m.LinearNames() {
		amax[n] = 4
	}
	sp, err := ParseSpec("w8a8s")
	require.NoError(t, err)
	require.NoError(t, Apply(s.m, sp, quant.SearchOptions{}, amax))
	name := "model.layers.2.mlp.down_proj"
	delete(amax, name)
	s.m.ResetLinears()
	assert.ErrorContains(t, Apply(s.m, sp, quant.SearchOptions{}, amax), "no calibrated activation amax for "+name)
}

// A width the group size does not divide takes the next divisor: 172 inputs with groups
// of 32 are quantized exactly as with groups of 43.
func TestFakeQuantizeWeightRefitsGroups(t *testing.T) {
	rows, cols := 5, 172
	w := testutil.StudentT(testutil.Rand(9), rows*cols, 3)
	for _, sym := range []bool{true, false} {
		s := quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 32}
		got, err := FakeQuantizeWeight("w", w, rows, cols, s, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		s43 := s
		s43.GroupSize = 43
		q, err := quant.Quantize("w", w, rows, cols, s43, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		assert.Equal(t, quant.Dequantize(q), got)
	}
}
