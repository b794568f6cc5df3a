package model

import (
	"fmt"
	"github.com/autoq/autoq/checkpoint"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// randomTensors returns deterministic Gaussian weights for cfg with HF names.
func randomTensors(cfg checkpoint.LlamaConfig, seed uint64) map[string]*tensor.Tensor {
	r := testutil.Rand(seed)
	D, H, KV, V := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.Vocab
	ts := map[string]*tensor.Tensor{}
	add := func(name string, sigma float64, shape ...int) {
		ts[name] = tensor.FromF32(testutil.Gaussian(r, tensor.NumElements(shape), sigma), shape...)
	}
	ones := func(name string, n int) {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + 0.1*float32(i%3)
		}
		ts[name] = tensor.FromF32(v, n)
	}
	add("model.embed_tokens.weight", 1, V, D)
	ones("model.norm.weight", D)
	if !cfg.TiedEmbeddings {
		add("lm_head.weight", 0.3, V, D)
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ones(p+"input_layernorm.weight", D)
		ones(p+"post_attention_layernorm.weight", D)
		add(p+"self_attn.q_proj.weight", 0.3, D, D)
		add(p+"self_attn.k_proj.weight", 0.3, KV, D)
		add(p+"self_attn.v_proj.weight", 0.3, KV, D)
		add(p+"self_attn.o_proj.weight", 0.3, D, D)
		add(p+"mlp.gate_proj.weight", 0.3, H, D)
		add(p+"mlp.up_proj.weight", 0.3, H, D)
		add(p+"mlp.down_proj.weight", 0.3, D, H)
		if cfg.Bias {
			add(p+"self_attn.q_proj.bias", 0.5, D)
			add(p+"self_attn.k_proj.bias", 0.5, KV)
			add(p+"self_attn.v_proj.bias", 0.5, KV)
		}
	}
	return ts
}

func tinyConfig() checkpoint.LlamaConfig {
	return checkpoint.LlamaConfig{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40,
		MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5}
}

func tinyModel(t *testing.T, cfg checkpoint.LlamaConfig, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, randomTensors(cfg, seed))
	require.NoError(t, err)
	return m
}

// readStories returns the real model's config and HF-named tensors; with raw, q/k rows are
// put back in llama2.c's interleaved order.
func readStories(t *testing.T, raw bool) (checkpoint.LlamaConfig, map[string]*tensor.Tensor) {
	t.Helper()
	cfg, named, err := checkpoint.ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	ts := byName(named)
	if raw {
		for name, tt := range ts {
			switch {
			case strings.HasSuffix(name, "q_proj.weight"):
				ts[name] = checkpoint.UnpermuteRoPE(tt, cfg.Heads)
			case strings.HasSuffix(name, "k_proj.weight"):
				ts[name] = checkpoint.UnpermuteRoPE(tt, cfg.KVHeads)
			}
		}
	}
	return *cfg, ts
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, abs64(float64(a[i])-float64(b[i])))
	}
	return d
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
