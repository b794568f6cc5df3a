package gguf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tensor"
)

// LlamaConfig reads the llama.* metadata of a GGUF file written for llama.cpp's llama
// architecture. Embeddings are tied when there is no output.weight tensor.
func LlamaConfig(f *File) (*checkpoint.LlamaConfig, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	if arch != "llama" {
		return nil, fmt.Errorf("gguf: %s: architecture %q is not llama", f.Path, arch)
	}
	u := func(key string, dst *int) {
		if err == nil {
			var v uint32
			v, err = f.Uint32("llama." + key)
			*dst = int(v)
		}
	}
	cfg := &checkpoint.LlamaConfig{Architecture: "LlamaForCausalLM", TorchDType: "float32"}
	u("embedding_length", &cfg.Dim)
	u("feed_forward_length", &cfg.HiddenDim)
	u("block_count", &cfg.Layers)
	u("attention.head_count", &cfg.Heads)
	u("attention.head_count_kv", &cfg.KVHeads)
	u("context_length", &cfg.MaxSeq)
	if err != nil {
		return nil, err
	}
	eps, err := f.Float32("llama.attention.layer_norm_rms_epsilon")
	if err != nil {
		return nil, err
	}
	cfg.NormEps, cfg.RopeTheta = shortest(eps), 10000
	if theta, err := f.Float32("llama.rope.freq_base"); err == nil {
		cfg.RopeTheta = shortest(theta)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Shape) != 2 {
		return nil, fmt.Errorf("gguf: %s: no 2-D token_embd.weight", f.Path)
	}
	cfg.Vocab = emb.Shape[0]
	_, hasOutput := f.Tensor("output.weight")
	cfg.TiedEmbeddings = !hasOutput
	if _, ok := f.Tensor("blk.0.attn_q.bias"); ok {
		cfg.Bias = true
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", f.Path, err)
	}
	return cfg, nil
}

// HFName maps a GGUF llama tensor name to autoq's (Hugging Face) name; ok is false for
// names WriteLlama does not write.
func HFName(name string) (string, bool) {
	switch name {
	case "token_embd.weight":
		return "model.embed_tokens.weight", true
	case "output_norm.weight":
		return "model.norm.weight", true
	case "output.weight":
		return "lm_head.weight", true
	}
	var l int
	var rest string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &l, &rest); n != 2 {
		return "", false
	}
	base, suffix, _ := strings.Cut(rest, ".")
	hf, ok := map[string]string{
		"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
		"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
		"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
	}[base]
	if !ok || (suffix != "weight" && suffix != "bias") {
		return "", false
	}
	return fmt.Sprintf("model.layers.%d.%s.%s", l, hf, suffix), true
}

// LlamaTensors reads every tensor of a llama GGUF file, dequantized to F32, under autoq's
// names, with q/k rows (and biases) permuted back to Hugging Face's rotate_half order: the
// inverse of WriteLlama, so model.New(*cfg, tensors) runs exactly the stored weights.
func LlamaTensors(f *File, cfg *checkpoint.LlamaConfig) (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	for _, ti := range f.Tensors {
		hf, ok := HFName(ti.Name)
		if !ok {
			return nil, fmt.Errorf("gguf: %s: tensor %q is not part of a llama model", f.Path, ti.Name)
		}
		raw, err := f.TensorData(ti.Name)
		if err != nil {
			return nil, err
		}
		cols := ti.Shape[len(ti.Shape)-1]
		rows := int(ti.Elements()) / cols
		v, err := Dequantize(ti.Name, ti.Type, rows, cols, raw)
		if err != nil {
			return nil, fmt.Errorf("gguf: %s: %w", f.Path, err)
		}
		t := tensor.FromF32(v, ti.Shape...)
		heads := 0
		switch {
		case strings.Contains(hf, "q_proj"):
			heads = cfg.Heads
		case strings.Contains(hf, "k_proj"):
			heads = cfg.KVHeads
		}
		if heads > 0 {
			shape := []int{rows, cols}
			if len(ti.Shape) == 1 {
				shape = []int{cols, 1}
			}
			t = checkpoint.PermuteRoPE(tensor.FromF32(v, shape...), heads)
			t.Shape = append([]int(nil), ti.Shape...)
		}
		out[hf] = t
	}
	return out, nil
}

// shortest widens a float32 to the float64 of its shortest decimal spelling (1e-5, not
// 9.999999747378752e-06), so a config read back equals the one written.
func shortest(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}
