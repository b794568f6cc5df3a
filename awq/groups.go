package awq

import (
	"fmt"

	"github.com/autoq/autoq/checkpoint"
)

// Group is a set of linear layers that read the same input, and the tensor that the
// inverse scales fold into.
type Group struct {
	Layers []string // consumer linear layers (e.g. q/k/v_proj), all with In inputs
	// Prev is the tensor 1/s is folded into: an RMSNorm weight [In] (Norm) or the weight
	// [Channels, *] of the linear layer producing the input, whose rows are divided.
	Prev     string
	PrevBias string // the producer's bias, divided like its rows ("" if none)
	Norm     bool
	In       int // consumer input channels
	Channels int // scale entries: In for a norm or MLP producer, kv dim for v_proj
	// HeadDim and Repeat map a consumer input channel to its scale entry when one producer
	// row feeds several channels (grouped-query attention: o_proj input c = h*HeadDim + i
	// of query head h reads v_proj row (h/Repeat)*HeadDim + i). Repeat 1: identity.
	HeadDim, Repeat int
}

// Entry returns the scale entry of consumer input channel c.
func (g *Group) Entry(c int) int {
	if g.Repeat <= 1 {
		return c
	}
	h, i := c/g.HeadDim, c%g.HeadDim
	return (h/g.Repeat)*g.HeadDim + i
}

// Expand returns the per-input-channel scales [In] of per-entry scales s [Channels].
func (g *Group) Expand(s []float32) []float32 {
	out := make([]float32, g.In)
	for c := range out {
		out[c] = s[g.Entry(c)]
	}
	return out
}

// Groups lists the four scaling groups of every decoder layer of a Llama-family model, in
// forward order: q/k/v after input_layernorm, o_proj after v_proj, gate/up after
// post_attention_layernorm, down_proj after up_proj.
func Groups(cfg checkpoint.LlamaConfig) ([]Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("awq: %w", err)
	}
	D, H, KV, hd := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.HeadDim()
	var out []Group
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		vBias := ""
		if cfg.Bias {
			vBias = p + "self_attn.v_proj.bias"
		}
		out = append(out,
			Group{Layers: []string{p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"},
				Prev: p + "input_layernorm.weight", Norm: true, In: D, Channels: D, Repeat: 1},
			Group{Layers: []string{p + "self_attn.o_proj"}, Prev: p + "self_attn.v_proj.weight", PrevBias: vBias,
				In: D, Channels: KV, HeadDim: hd, Repeat: cfg.Heads / cfg.KVHeads},
			Group{Layers: []string{p + "mlp.gate_proj", p + "mlp.up_proj"},
				Prev: p + "post_attention_layernorm.weight", Norm: true, In: D, Channels: D, Repeat: 1},
			Group{Layers: []string{p + "mlp.down_proj"}, Prev: p + "mlp.up_proj.weight", In: H, Channels: H, Repeat: 1},
		)
	}
	return out, nil
}

// Scales is the outcome of the search for one group.
type Scales struct {
	Group
	S     []float32 // [Channels]; all 1 when no scaling helped
	Alpha float64   // the chosen exponent (0: unscaled)
	Duo   bool      // S includes the weight-magnitude term (Options.Duo)
	Err0  float64   // group output error without scaling
	Err   float64   // group output error with S (<= Err0)
}
