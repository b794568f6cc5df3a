// Package llamatest builds deterministic random Llama checkpoints (tensors with Hugging
// Face names) for the tests of the packages that run models (model, awq, ...).
package llamatest

import (
	"fmt"
	"math/rand/v2"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
)

// NormFunc returns the n weights of an RMSNorm; it may draw from r.
type NormFunc func(r *rand.Rand, n int) []float32

// PatternNorms gives norm weights 1, 1.1, 1.2, 1, ... (no random draws).
func PatternNorms(_ *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1 + 0.1*float32(i%3)
	}
	return v
}

// RandomNorms gives norm weights uniform in [0.5, 1.5).
func RandomNorms(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 0.5 + r.Float32()
	}
	return v
}

// Tensors returns Gaussian weights for cfg (embeddings sigma 1, projections 0.3, q/k/v
// biases 0.5 when cfg.Bias; lm_head unless the embeddings are tied) drawn in a fixed order
// from testutil.Rand(seed), and norms from norm.
func Tensors(cfg checkpoint.LlamaConfig, seed uint64, norm NormFunc) map[string]*tensor.Tensor {
	r := testutil.Rand(seed)
	D, H, KV, V := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.Vocab
	ts := map[string]*tensor.Tensor{}
	add := func(name string, sigma float64, shape ...int) {
		ts[name] = tensor.FromF32(testutil.Gaussian(r, tensor.NumElements(shape), sigma), shape...)
	}
	nrm := func(name string, n int) { ts[name] = tensor.FromF32(norm(r, n), n) }
	add("model.embed_tokens.weight", 1, V, D)
	nrm("model.norm.weight", D)
	if !cfg.TiedEmbeddings {
		add("lm_head.weight", 0.3, V, D)
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		nrm(p+"input_layernorm.weight", D)
		nrm(p+"post_attention_layernorm.weight", D)
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
