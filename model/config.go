package model

import "fmt"

// Config is the architecture of a Llama-family model.
// TODO(switch): replace by checkpoint.LlamaConfig when package checkpoint lands.
type Config struct {
	Dim           int     // hidden size
	HiddenDim     int     // MLP intermediate size
	NumLayers     int     // decoder layers
	NumHeads      int     // query heads
	NumKVHeads    int     // key/value heads (GQA when < NumHeads)
	VocabSize     int     // vocabulary size
	MaxSeqLen     int     // longest sequence the model was trained for
	RopeTheta     float64 // RoPE base (10000 for Llama 2)
	RMSNormEps    float64 // RMSNorm epsilon (1e-5 for llama2.c)
	TiedEmbedding bool    // classifier shares the token embedding
	AttentionBias bool    // q/k/v projections carry a bias (Qwen2)
}

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.NumHeads }

// KVDim is the total size of the key (and value) projection outputs.
func (c Config) KVDim() int { return c.HeadDim() * c.NumKVHeads }

// Validate checks that the sizes are positive and consistent.
func (c Config) Validate() error {
	if c.Dim <= 0 || c.HiddenDim <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.VocabSize <= 0 {
		return fmt.Errorf("model config: sizes must be positive: %+v", c)
	}
	if c.Dim%c.NumHeads != 0 {
		return fmt.Errorf("model config: dim %d is not a multiple of %d heads", c.Dim, c.NumHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("model config: head dim %d is odd (RoPE rotates pairs)", c.HeadDim())
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("model config: %d heads are not a multiple of %d key/value heads", c.NumHeads, c.NumKVHeads)
	}
	if c.RopeTheta <= 0 || c.RMSNormEps <= 0 {
		return fmt.Errorf("model config: rope theta %g and rms norm eps %g must be positive", c.RopeTheta, c.RMSNormEps)
	}
	return nil
}
