package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// LlamaConfig is the architecture of a Llama-family model, in the units of HF config.json.
type LlamaConfig struct {
	Dim            int     // hidden_size
	HiddenDim      int     // intermediate_size (MLP)
	Layers         int     // num_hidden_layers
	Heads          int     // num_attention_heads
	KVHeads        int     // num_key_value_heads (grouped-query attention)
	Vocab          int     // vocab_size
	MaxSeq         int     // max_position_embeddings
	RopeTheta      float64 // rope_theta
	NormEps        float64 // rms_norm_eps
	TiedEmbeddings bool    // tie_word_embeddings: lm_head shares model.embed_tokens.weight
	Architecture   string  // architectures[0]: LlamaForCausalLM, Qwen2ForCausalLM, ...
	Bias           bool    // q/k/v projections carry biases (Qwen2, or Llama attention_bias)
	TorchDType     string  // torch_dtype: float32, float16, bfloat16
	// RopeScaling is rope_scaling.rope_type (or .type) when config.json sets one, else "".
	// autoq's runner implements plain RoPE only and should refuse a non-empty value.
	RopeScaling string
}

// HeadDim is the per-head dimension.
func (c *LlamaConfig) HeadDim() int { return c.Dim / c.Heads }

// KVDim is the width of the k and v projections.
func (c *LlamaConfig) KVDim() int { return c.KVHeads * c.HeadDim() }

// Validate checks that the sizes are positive and consistent.
func (c *LlamaConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden_size", c.Dim}, {"intermediate_size", c.HiddenDim}, {"num_hidden_layers", c.Layers},
		{"num_attention_heads", c.Heads}, {"num_key_value_heads", c.KVHeads}, {"vocab_size", c.Vocab}, {"max_position_embeddings", c.MaxSeq}} {
		if f.v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.Dim%c.Heads != 0 {
		return fmt.Errorf("hidden_size %d does not divide by num_attention_heads %d", c.Dim, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("num_attention_heads %d does not divide by num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("head dimension %d is odd; RoPE needs pairs", c.HeadDim())
	}
	return nil
}

// supportedArchitectures maps architectures[0] to model_type.
var supportedArchitectures = map[string]string{
	"LlamaForCausalLM":   "llama",
	"MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM":   "qwen2",
}

// hfConfig is the subset of config.json autoq reads and writes.
type hfConfig struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      int             `json:"num_key_value_heads,omitempty"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RopeTheta             float64         `json:"rope_theta,omitempty"`
	RMSNormEps            float64         `json:"rms_norm_eps,omitempty"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings,omitempty"`
	TorchDType            string          `json:"torch_dtype,omitempty"`
	HiddenAct             string          `json:"hidden_act,omitempty"`
	AttentionBias         *bool           `json:"attention_bias,omitempty"`
	HeadDim               int             `json:"head_dim,omitempty"`
	RopeScaling           json.RawMessage `json:"rope_scaling,omitempty"`
	BOSTokenID            *int            `json:"bos_token_id,omitempty"`
	EOSTokenID            *int            `json:"eos_token_id,omitempty"`
}

// ReadConfig reads dir/config.json (dir may also be the config.json path itself).
func ReadConfig(dir string) (*LlamaConfig, error) {
	path := dir
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		path = filepath.Join(dir, "config.json")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return ParseConfig(path, raw)
}

// ParseConfig parses the bytes of a config.json; path names the file in errors.
func ParseConfig(path string, raw []byte) (*LlamaConfig, error) {
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: invalid JSON: %w", path, err)
	}
	if len(h.Architectures) == 0 {
		return nil, fmt.Errorf("checkpoint: %s: no \"architectures\" entry", path)
	}
	arch := h.Architectures[0]
	if _, ok := supportedArchitectures[arch]; !ok {
		return nil, fmt.Errorf("checkpoint: %s: unsupported architecture %q (autoq runs LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM)", path, arch)
	}
	c := &LlamaConfig{
		Dim: h.HiddenSize, HiddenDim: h.IntermediateSize, Layers: h.NumHiddenLayers,
		Heads: h.NumAttentionHeads, KVHeads: h.NumKeyValueHeads, Vocab: h.VocabSize,
		MaxSeq: h.MaxPositionEmbeddings, RopeTheta: h.RopeTheta, NormEps: h.RMSNormEps,
		Architecture: arch, TorchDType: h.TorchDType,
	}
	// Defaults as in transformers' LlamaConfig / Qwen2Config.
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-6
	}
	if h.TieWordEmbeddings != nil {
		c.TiedEmbeddings = *h.TieWordEmbeddings
	}
	c.Bias = arch == "Qwen2ForCausalLM" // Qwen2 always has q/k/v biases
	if h.AttentionBias != nil && *h.AttentionBias {
		c.Bias = true
	}
	if len(h.RopeScaling) > 0 && string(h.RopeScaling) != "null" {
		var rs struct {
			RopeType string `json:"rope_type"`
			Type     string `json:"type"`
		}
		if err := json.Unmarshal(h.RopeScaling, &rs); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: bad rope_scaling: %w", path, err)
		}
		c.RopeScaling = rs.RopeType
		if c.RopeScaling == "" {
			c.RopeScaling = rs.Type
		}
		if c.RopeScaling == "" {
			c.RopeScaling = "unknown"
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if h.HeadDim != 0 && h.HeadDim != c.HeadDim() {
		return nil, fmt.Errorf("checkpoint: %s: head_dim %d differs from hidden_size/num_attention_heads = %d (not supported)", path, h.HeadDim, c.HeadDim())
	}
	return c, nil
}

// configJSON renders cfg as a Hugging Face config.json.
func configJSON(cfg *LlamaConfig) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	arch := cfg.Architecture
	if arch == "" {
		arch = "LlamaForCausalLM"
	}
	mt, ok := supportedArchitectures[arch]
	if !ok {
		return nil, fmt.Errorf("unsupported architecture %q", arch)
	}
	dt := cfg.TorchDType
	if dt == "" {
		dt = "float32"
	}
	eps := cfg.NormEps
	if eps == 0 {
		eps = 1e-5
	}
	theta := cfg.RopeTheta
	if theta == 0 {
		theta = 10000
	}
	tied, bias, bos, eos := cfg.TiedEmbeddings, cfg.Bias, 1, 2
	h := hfConfig{
		Architectures: []string{arch}, ModelType: mt,
		HiddenSize: cfg.Dim, IntermediateSize: cfg.HiddenDim, NumHiddenLayers: cfg.Layers,
		NumAttentionHeads: cfg.Heads, NumKeyValueHeads: cfg.KVHeads, VocabSize: cfg.Vocab,
		MaxPositionEmbeddings: cfg.MaxSeq, RopeTheta: theta, RMSNormEps: eps,
		TieWordEmbeddings: &tied, TorchDType: dt, HiddenAct: "silu", AttentionBias: &bias,
		BOSTokenID: &bos, EOSTokenID: &eos,
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ConfigJSON renders cfg as a Hugging Face config.json (as WriteHF writes it).
func ConfigJSON(cfg *LlamaConfig) ([]byte, error) { return configJSON(cfg) }
