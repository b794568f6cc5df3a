package rotate

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type modelCase struct {
	name string
	cfg  checkpoint.LlamaConfig
}

func modelCases() []modelCase {
	base := checkpoint.LlamaConfig{Layers: 2, Vocab: 40, MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5}
	with := func(dim, hidden, heads, kv int, tied, bias bool) checkpoint.LlamaConfig {
		c := base
		c.Dim, c.HiddenDim, c.Heads, c.KVHeads, c.TiedEmbeddings, c.Bias = dim, hidden, heads, kv, tied, bias
		return c
	}
	return []modelCase{
		{"mha-untied", with(16, 24, 4, 4, false, false)},
		{"gqa-tied", with(16, 24, 4, 2, true, false)},
		{"mha-bias-tied", with(16, 40, 2, 2, true, true)},
		// 24 = 12·2 (Paley I), head_dim 12 (Paley I), one key/value head for two query heads.
		{"gqa-bias-untied-paley", with(24, 36, 2, 1, false, true)},
		// 20 = Paley I (q = 19); head_dim 10 has no Hadamard matrix: random orthogonal.
		{"gqa-bias-tied-dim20", with(20, 30, 2, 1, true, true)},
	}
}

// The rotated full-precision model computes the same logits as the original.
func TestRotatedLogitsMatch(t *testing.T) {
	tokens := tokenBatch(40, 9, 5)
	for _, mc := range modelCases() {
		for _, opt := range []Options{{}, {Kind: Random}, {NoHeads: true}, {Kind: Identity}} {
			t.Run(fmt.Sprintf("%s/%s/noheads=%v", mc.name, opt.Kind, opt.NoHeads), func(t *testing.T) {
				ts := llamatest.Tensors(mc.cfg, 11, llamatest.RandomNorms)
				want := logits(t, mc.cfg, ts, tokens)
				rcfg, rts, err := Checkpoint(mc.cfg, named(ts), 1234, opt)
				require.NoError(t, err)
				assert.False(t, rcfg.TiedEmbeddings)
				got := logits(t, rcfg, byName(rts), tokens)
				e := relErr(want, got)
				t.Logf("relative logit error %.2e", e)
				assert.LessOrEqual(t, e, 1e-5)
			})
		}
	}
}

// The rotation really changes the weights (an identity bug would pass the logit test) and
// leaves the norms at one.
func TestRotatedTensorsChange(t *testing.T) {
	cfg := modelCases()[1].cfg // tied
	ts := llamatest.Tensors(cfg, 11, llamatest.RandomNorms)
	_, rts, err := Checkpoint(cfg, named(ts), 1, Options{})
	require.NoError(t, err)
	out := byName(rts)
	require.Contains(t, out, "lm_head.weight", "tied embeddings are untied")
	for name, rt := range out {
		require.Equal(t, tensor.F32, rt.DType, name)
		if strings.HasSuffix(name, "norm.weight") {
			for _, v := range rt.F32() {
				require.Equal(t, float32(1), v, name)
			}
			continue
		}
		orig := ts[name]
		if name == "lm_head.weight" {
			orig = ts["model.embed_tokens.weight"]
		}
		same := 0
		for i, v := range rt.F32() {
			if v == orig.F32()[i] {
				same++
			}
		}
		assert.Less(t, same, rt.NumElements()/10, "%s barely changed", name)
	}
}

// The wrapped view reads as the rotated checkpoint: Checkpoint's tensors rounded once to
// each source tensor's dtype (BF16 here), lm_head added for a tied source, and a model
// built from it computes the original's logits up to that rounding.
func TestWrapReadsAsTheRotatedCheckpoint(t *testing.T) {
	cfg := modelCases()[2].cfg // tied, biases
	ts := named(llamatest.Tensors(cfg, 9, llamatest.RandomNorms))
	for i := range ts {
		ts[i].T = ts[i].T.Convert(tensor.BF16)
	}
	src, err := checkpoint.NewMemory(ts, map[string]string{"k": "v"})
	require.NoError(t, err)
	r, err := New(cfg, 5, Options{})
	require.NoError(t, err)
	_, wantBF16Src, err := Checkpoint(cfg, ts, 5, Options{}) // F32 results from the BF16 values
	require.NoError(t, err)

	view, err := r.Wrap(src)
	require.NoError(t, err)
	names := view.Names()
	require.Len(t, names, len(wantBF16Src))
	assert.Equal(t, "lm_head.weight", names[len(names)-1])
	assert.Equal(t, map[string]string{"k": "v"}, view.Metadata())
	got := map[string]*tensor.Tensor{}
	for i, name := range names {
		info, ok := view.Info(name)
		require.True(t, ok)
		assert.Equal(t, tensor.BF16, info.DType, name)
		v, err := view.Tensor(name)
		require.NoError(t, err)
		assert.Equal(t, info.Shape, v.Shape)
		assert.Equal(t, wantBF16Src[i].T.Convert(tensor.BF16).Data, v.Data, name)
		got[name] = v
	}
	_, ok := view.Info("nope")
	assert.False(t, ok)
	_, err = view.Tensor("nope")
	assert.ErrorContains(t, err, "no tensor nope")

	rcfg := r.Config()
	tokens := tokenBatch(cfg.Vocab, 12, 7)
	orig := map[string]*tensor.Tensor{}
	for _, nt := range ts {
		orig[nt.Name] = nt.T
	}
	e := relErr(logits(t, cfg, orig, tokens), logits(t, rcfg, got, tokens))
	t.Logf("BF16 rotated view: relative logit error %.2e", e)
	assert.Less(t, e, 0.05)
	require.NoError(t, view.Close())
}

func TestWrapRefusesForeignTensors(t *testing.T) {
	cfg := modelCases()[0].cfg
	ts := named(llamatest.Tensors(cfg, 1, llamatest.PatternNorms))
	ts = append(ts, named(map[string]*tensor.Tensor{"model.rotary_emb.inv_freq": tensor.FromF32([]float32{1, 2}, 2)})...)
	src, err := checkpoint.NewMemory(ts, nil)
	require.NoError(t, err)
	r, err := New(cfg, 1, Options{})
	require.NoError(t, err)
	_, err = r.Wrap(src)
	assert.ErrorContains(t, err, "model.rotary_emb.inv_freq")
}

func TestBadInputErrors(t *testing.T) {
	cfg := modelCases()[0].cfg
	fresh := func() map[string]*tensor.Tensor { return llamatest.Tensors(cfg, 3, llamatest.PatternNorms) }
	cases := []struct {
		name  string
		edit  func(ts map[string]*tensor.Tensor)
		wants []string
	}{
		{"unknown tensor", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.0.mlp.experts.0.weight"] = tensor.FromF32(make([]float32, 4), 4)
		}, []string{"model.layers.0.mlp.experts.0.weight", "not part of a Llama decoder layer"}},
		{"unknown top-level tensor", func(ts map[string]*tensor.Tensor) {
			ts["vision_tower.weight"] = tensor.FromF32(make([]float32, 4), 4)
		}, []string{"vision_tower.weight", "not part of a Llama decoder"}},
		{"layer out of range", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.2.mlp.up_proj.weight"] = ts["model.layers.0.mlp.up_proj.weight"]
		}, []string{"model.layers.2.mlp.up_proj.weight", "no layer \"2\" in a model of 2 layers"}},
		{"non-canonical layer", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.01.mlp.up_proj.weight"] = ts["model.layers.0.mlp.up_proj.weight"]
		}, []string{"model.layers.01.mlp.up_proj.weight"}},
		{"missing tensor", func(ts map[string]*tensor.Tensor) {
			delete(ts, "model.layers.1.post_attention_layernorm.weight")
		}, []string{"no tensor model.layers.1.post_attention_layernorm.weight"}},
		{"wrong shape", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.1.self_attn.k_proj.weight"] = tensor.FromF32(make([]float32, 16*8), 8, 16)
		}, []string{"model.layers.1.self_attn.k_proj.weight", "shape [8 16], want [16 16]"}},
		{"NaN weight", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.0.mlp.down_proj.weight"].F32()[5] = float32(math.NaN())
		}, []string{"model.layers.0.mlp.down_proj.weight", "non-finite value NaN at element 5"}},
		{"Inf norm", func(ts map[string]*tensor.Tensor) {
			ts["model.norm.weight"].F32()[2] = float32(math.Inf(1))
		}, []string{"model.norm.weight", "non-finite value +Inf at element 2"}},
		{"integer dtype", func(ts map[string]*tensor.Tensor) {
			ts["model.layers.0.self_attn.o_proj.weight"] = tensor.FromI8(make([]int8, 256), 16, 16)
		}, []string{"model.layers.0.self_attn.o_proj.weight", "dtype I8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := fresh()
			c.edit(ts)
			_, _, err := Checkpoint(cfg, named(ts), 1, Options{})
			require.Error(t, err)
			for _, w := range c.wants {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	bad := cfg
	bad.KVHeads = 3
	_, err := New(bad, 1, Options{})
	require.ErrorContains(t, err, "num_key_value_heads 3")
	_, err = New(cfg, 1, Options{Kind: Kind(9)})
	require.ErrorContains(t, err, "unknown rotation kind 9")
}

// A streaming caller whose source lacks the norm a linear folds gets an error naming both.
func TestTensorMissingNorm(t *testing.T) {
	cfg := modelCases()[0].cfg
	ts := llamatest.Tensors(cfg, 3, llamatest.PatternNorms)
	delete(ts, "model.layers.0.input_layernorm.weight")
	src, err := checkpoint.NewMemory(named(ts), nil)
	require.NoError(t, err)
	r, err := New(cfg, 1, Options{})
	require.NoError(t, err)
	_, err = r.Tensor(src, "model.layers.0.self_attn.q_proj.weight")
	require.ErrorContains(t, err, "model.layers.0.self_attn.q_proj.weight: its norm")
	require.ErrorContains(t, err, "model.layers.0.input_layernorm.weight")
}

func TestNamesTiedAndPassThrough(t *testing.T) {
	cfg := modelCases()[1].cfg // tied
	ts := llamatest.Tensors(cfg, 3, llamatest.PatternNorms)
	inv := tensor.FromF32([]float32{1, 0.1, 0.01}, 3)
	ts["model.layers.0.self_attn.rotary_emb.inv_freq"] = inv
	r, err := New(cfg, 1, Options{})
	require.NoError(t, err)
	in := named(ts)
	var names []string
	for _, nt := range in {
		names = append(names, nt.Name)
	}
	out, err := r.Names(names)
	require.NoError(t, err)
	assert.Equal(t, append(names, "lm_head.weight"), out)
	// A tied checkpoint that also stores lm_head.weight keeps one entry, computed from the
	// embedding (transformers ignores the stored copy when tied).
	out2, err := r.Names(append(names, "lm_head.weight"))
	require.NoError(t, err)
	assert.Equal(t, out, out2)
	src, err := checkpoint.NewMemory(in, nil)
	require.NoError(t, err)
	got, err := r.Tensor(src, "model.layers.0.self_attn.rotary_emb.inv_freq")
	require.NoError(t, err)
	assert.Equal(t, inv.F32(), got.F32())
	assert.True(t, r.Config().TiedEmbeddings == false && cfg.TiedEmbeddings)
}

// BF16 weights are read as such; the F32 output of the rotation computes the BF16 model's
// logits.
func TestBF16Input(t *testing.T) {
	cfg := modelCases()[3].cfg
	ts := llamatest.Tensors(cfg, 4, llamatest.RandomNorms)
	for name, tt := range ts {
		ts[name] = tt.Convert(tensor.BF16)
	}
	tokens := tokenBatch(cfg.Vocab, 6, 8)
	want := logits(t, cfg, ts, tokens)
	rcfg, rts, err := Checkpoint(cfg, named(ts), 9, Options{})
	require.NoError(t, err)
	assert.LessOrEqual(t, relErr(want, logits(t, rcfg, byName(rts), tokens)), 1e-5)
}

// The same seed gives the same bits for a whole checkpoint; another seed other weights.
func TestCheckpointDeterministic(t *testing.T) {
	cfg := modelCases()[4].cfg
	ts := named(llamatest.Tensors(cfg, 4, llamatest.RandomNorms))
	_, a, err := Checkpoint(cfg, ts, 21, Options{})
	require.NoError(t, err)
	_, b, err := Checkpoint(cfg, ts, 21, Options{})
	require.NoError(t, err)
	_, c, err := Checkpoint(cfg, ts, 22, Options{})
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	for i := range a {
		assert.Equal(t, a[i].Name, b[i].Name)
		assert.Equal(t, a[i].T.Data, b[i].T.Data, a[i].Name)
	}
	assert.NotEqual(t, byName(a)["model.layers.0.self_attn.q_proj.weight"].Data, byName(c)["model.layers.0.self_attn.q_proj.weight"].Data)
	assert.NotEqual(t, byName(a)["model.layers.0.self_attn.o_proj.weight"].Data, byName(c)["model.layers.0.self_attn.o_proj.weight"].Data)
}
