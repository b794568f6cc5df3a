package synth

import (
	"fmt"
	"sort"
	"strings"

	"github.com/autoq/autoq/checkpoint"
)

// Shape is a named architecture: the hyper-parameters of a released model's config.json.
type Shape struct {
	Name   string
	Config checkpoint.LlamaConfig
}

func llama(dim, hidden, layers, heads, kvHeads, vocab, maxSeq int, theta float64) checkpoint.LlamaConfig {
	return checkpoint.LlamaConfig{Dim: dim, HiddenDim: hidden, Layers: layers, Heads: heads, KVHeads: kvHeads,
		Vocab: vocab, MaxSeq: maxSeq, RopeTheta: theta, NormEps: 1e-5, Architecture: "LlamaForCausalLM"}
}

// shapes are the config.json values of meta-llama/Llama-2-{7b,13b,70b}-hf and
// Meta-Llama-3-8B (grouped-query attention with 8 KV heads for llama3-8b and llama2-70b),
// "llama-100m" (issue 14's ~100M-parameter end-to-end shape: dim 1024, 8 layers, vocab
// 32000, an MLP of 2816; 103M parameters in the blocks, 168M with the untied embedding and
// head), and "tiny", a small model of the same structure for tests and smoke runs.
var shapes = []Shape{
	{"llama2-7b", llama(4096, 11008, 32, 32, 32, 32000, 4096, 10000)},
	{"llama2-13b", llama(5120, 13824, 40, 40, 40, 32000, 4096, 10000)},
	{"llama3-8b", llama(4096, 14336, 32, 32, 8, 128256, 8192, 500000)},
	{"llama2-70b", llama(8192, 28672, 80, 64, 8, 32000, 4096, 10000)},
	{"llama-100m", llama(1024, 2816, 8, 16, 16, 32000, 2048, 10000)},
	{"tiny", llama(256, 768, 2, 4, 2, 512, 512, 10000)},
}

// Shapes lists the known shapes.
func Shapes() []Shape { return append([]Shape(nil), shapes...) }

// ShapeNames lists the known shape names, sorted.
func ShapeNames() []string {
	var out []string
	for _, s := range shapes {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// LookupShape returns the shape called name.
func LookupShape(name string) (Shape, error) {
	for _, s := range shapes {
		if s.Name == name {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("unknown shape %q (known: %s)", name, strings.Join(ShapeNames(), ", "))
}

// Kind says how a tensor's values are drawn.
type Kind int

const (
	// Weight is a matrix (linear layer or embedding): Student-t(5) with std 1/sqrt(cols).
	Weight Kind = iota
	// OutlierNorm is an RMSNorm weight in front of q/k/v or gate/up: 1 + 0.1 t (t a
	// Student-t(5) of unit variance), 20x larger at the outlier dimensions.
	OutlierNorm
	// Norm is the final RMSNorm weight: 1 + 0.1 t.
	Norm
)

// TensorSpec is one tensor of a synthetic checkpoint.
type TensorSpec struct {
	Name  string
	Shape []int
	Kind  Kind
	Shard int // index into Plan.Shards
}

// Elements is the number of values.
func (t TensorSpec) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// tensorSpecs lists a Llama checkpoint's tensors in the order transformers' state dict has
// them: embedding, each layer's norm, q/k/v/o, norm, gate/up/down, the final norm, then
// lm_head (absent with tied embeddings).
func tensorSpecs(c checkpoint.LlamaConfig) []TensorSpec {
	D, H, KV, V := c.Dim, c.HiddenDim, c.KVDim(), c.Vocab
	ts := []TensorSpec{{Name: "model.embed_tokens.weight", Shape: []int{V, D}}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			TensorSpec{Name: p + "input_layernorm.weight", Shape: []int{D}, Kind: OutlierNorm},
			TensorSpec{Name: p + "self_attn.q_proj.weight", Shape: []int{D, D}},
			TensorSpec{Name: p + "self_attn.k_proj.weight", Shape: []int{KV, D}},
			TensorSpec{Name: p + "self_attn.v_proj.weight", Shape: []int{KV, D}},
			TensorSpec{Name: p + "self_attn.o_proj.weight", Shape: []int{D, D}},
			TensorSpec{Name: p + "post_attention_layernorm.weight", Shape: []int{D}, Kind: OutlierNorm},
			TensorSpec{Name: p + "mlp.gate_proj.weight", Shape: []int{H, D}},
			TensorSpec{Name: p + "mlp.up_proj.weight", Shape: []int{H, D}},
			TensorSpec{Name: p + "mlp.down_proj.weight", Shape: []int{D, H}},
		)
	}
	ts = append(ts, TensorSpec{Name: "model.norm.weight", Shape: []int{D}, Kind: Norm})
	if !c.TiedEmbeddings {
		ts = append(ts, TensorSpec{Name: "lm_head.weight", Shape: []int{V, D}})
	}
	return ts
}
