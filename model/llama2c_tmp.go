package model

// TEMPORARY: a minimal llama2.c reader until package checkpoint (ReadLlama2C) lands; then
// this file is deleted and Load calls checkpoint.ReadLlama2C.

import (
	"encoding/binary"
	"fmt"
	"github.com/autoq/autoq/checkpoint"
	"math"
	"os"

	"github.com/autoq/autoq/tensor"
)

// readLlama2C reads a llama2.c checkpoint into HF-named tensors. With permute, wq/wk rows
// are reordered into HF's half-split RoPE order; without, they stay interleaved.
func readLlama2C(path string, permute bool) (checkpoint.LlamaConfig, map[string]*tensor.Tensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return checkpoint.LlamaConfig{}, nil, err
	}
	if len(raw) < 28 {
		return checkpoint.LlamaConfig{}, nil, fmt.Errorf("%s: truncated llama2.c header", path)
	}
	var h [7]int
	for i := range h {
		h[i] = int(int32(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	cfg := checkpoint.LlamaConfig{Dim: h[0], HiddenDim: h[1], Layers: h[2], Heads: h[3], KVHeads: h[4],
		Vocab: h[5], MaxSeq: h[6], RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: h[5] > 0}
	if cfg.Vocab < 0 {
		cfg.Vocab = -cfg.Vocab
	}
	if err := cfg.Validate(); err != nil {
		return checkpoint.LlamaConfig{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	f := make([]float32, (len(raw)-28)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[28+4*i:]))
	}
	D, H, L, V, KV := cfg.Dim, cfg.HiddenDim, cfg.Layers, cfg.Vocab, cfg.KVDim()
	off := 0
	next := func(n int) ([]float32, error) {
		if off+n > len(f) {
			return nil, fmt.Errorf("%s: truncated weights", path)
		}
		v := f[off : off+n]
		off += n
		return v, nil
	}
	out := map[string]*tensor.Tensor{}
	type arr struct {
		name  string
		shape []int
	}
	perLayer := func(suffix string, shape ...int) arr { return arr{suffix, shape} }
	seq := []arr{
		{"model.embed_tokens.weight", []int{V, D}},
		perLayer("input_layernorm.weight", D),
		perLayer("self_attn.q_proj.weight", D, D), perLayer("self_attn.k_proj.weight", KV, D),
		perLayer("self_attn.v_proj.weight", KV, D), perLayer("self_attn.o_proj.weight", D, D),
		perLayer("post_attention_layernorm.weight", D),
		perLayer("mlp.gate_proj.weight", H, D), perLayer("mlp.down_proj.weight", D, H),
		perLayer("mlp.up_proj.weight", H, D),
		{"model.norm.weight", []int{D}},
	}
	for i, a := range seq {
		if i == 0 || i == len(seq)-1 {
			v, err := next(tensor.NumElements(a.shape))
			if err != nil {
				return checkpoint.LlamaConfig{}, nil, err
			}
			out[a.name] = tensor.FromF32(v, a.shape...)
			continue
		}
		for l := 0; l < L; l++ {
			v, err := next(tensor.NumElements(a.shape))
			if err != nil {
				return checkpoint.LlamaConfig{}, nil, err
			}
			if permute && (a.name == "self_attn.q_proj.weight" || a.name == "self_attn.k_proj.weight") {
				v = permuteHF(v, a.shape[0]/cfg.HeadDim(), a.shape[0], a.shape[1])
			}
			out[fmt.Sprintf("model.layers.%d.%s", l, a.name)] = tensor.FromF32(v, a.shape...)
		}
	}
	if _, err := next(cfg.MaxSeq * cfg.HeadDim()); err != nil { // legacy RoPE tables
		return checkpoint.LlamaConfig{}, nil, err
	}
	if !cfg.TiedEmbeddings {
		v, err := next(V * D)
		if err != nil {
			return checkpoint.LlamaConfig{}, nil, err
		}
		out["lm_head.weight"] = tensor.FromF32(v, V, D)
	}
	return cfg, out, nil
}

// permuteHF reorders rows within each head from interleaved pairs (2i, 2i+1) to halves
// (i, i+hd/2), as HF's convert_llama_weights_to_hf.py does.
func permuteHF(w []float32, heads, rows, cols int) []float32 {
	hd := rows / heads
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for j := 0; j < 2; j++ {
				src := h*hd + 2*i + j
				dst := h*hd + j*hd/2 + i
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}
