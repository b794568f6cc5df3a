package rotate

import (
	"fmt"
	"strconv"
	"strings"
)

// role says how one tensor of a Llama checkpoint changes. A weight W [out, in] becomes
//
//	W' = outRotᵀ · W · diag(norm) · inRot
//
// (each factor only when set; a rotation smaller than its side acts block-diagonally, one
// block per head), a bias b [out] becomes b·outRot, an RMSNorm weight becomes ones.
type role struct {
	src    string // the source tensor ("lm_head.weight" of a tied model reads the embedding)
	shape  []int
	norm   string      // RMSNorm weight folded into the inputs ("" for none)
	inRot  *Orthogonal // rotates the input side (columns of W): W·Q
	outRot *Orthogonal // rotates the output side (rows of W): Qᵀ·W
	ones   bool        // an RMSNorm weight: folded into its readers, replaced by 1
	bias   bool        // a 1-D bias: only outRot applies
	copy   bool        // passed through unchanged
}

const (
	embedName     = "model.embed_tokens.weight"
	finalNormName = "model.norm.weight"
	headName      = "lm_head.weight"
)

// role returns how the tensor name is rotated, or an error for a tensor that this package
// does not know (rotating around it could silently change the model).
func (r *Rotator) role(name string) (role, error) {
	c := r.cfg
	D, H, KV, V := c.Dim, c.HiddenDim, c.KVDim(), c.Vocab
	Q := r.residual
	switch name {
	case embedName:
		return role{src: name, shape: []int{V, D}, inRot: Q}, nil
	case finalNormName:
		return role{src: name, shape: []int{D}, ones: true}, nil
	case headName:
		src := name
		if c.TiedEmbeddings {
			src = embedName
		}
		return role{src: src, shape: []int{V, D}, norm: finalNormName, inRot: Q}, nil
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	dot := strings.IndexByte(rest, '.')
	if !ok || dot <= 0 {
		return role{}, fmt.Errorf("rotate: tensor %s is not part of a Llama decoder; cannot rotate a checkpoint holding it", name)
	}
	l, err := strconv.Atoi(rest[:dot])
	if err != nil || l < 0 || strconv.Itoa(l) != rest[:dot] || l >= c.Layers {
		return role{}, fmt.Errorf("rotate: tensor %s: no layer %q in a model of %d layers", name, rest[:dot], c.Layers)
	}
	p := fmt.Sprintf("model.layers.%d.", l)
	attnNorm, ffnNorm := p+"input_layernorm.weight", p+"post_attention_layernorm.weight"
	R := r.head
	ro := role{src: name}
	switch rest[dot+1:] {
	case "input_layernorm.weight", "post_attention_layernorm.weight":
		ro.shape, ro.ones = []int{D}, true
	case "self_attn.q_proj.weight":
		ro.shape, ro.norm, ro.inRot = []int{D, D}, attnNorm, Q
	case "self_attn.k_proj.weight":
		ro.shape, ro.norm, ro.inRot = []int{KV, D}, attnNorm, Q
	case "self_attn.v_proj.weight":
		ro.shape, ro.norm, ro.inRot, ro.outRot = []int{KV, D}, attnNorm, Q, R
	case "self_attn.o_proj.weight":
		ro.shape, ro.inRot, ro.outRot = []int{D, D}, R, Q
	case "mlp.gate_proj.weight", "mlp.up_proj.weight":
		ro.shape, ro.norm, ro.inRot = []int{H, D}, ffnNorm, Q
	case "mlp.down_proj.weight":
		ro.shape, ro.outRot = []int{D, H}, Q
	case "self_attn.q_proj.bias":
		ro.shape, ro.bias = []int{D}, true
	case "self_attn.k_proj.bias":
		ro.shape, ro.bias = []int{KV}, true
	case "self_attn.v_proj.bias":
		ro.shape, ro.bias, ro.outRot = []int{KV}, true, R
	case "self_attn.o_proj.bias", "mlp.down_proj.bias":
		ro.shape, ro.bias, ro.outRot = []int{D}, true, Q
	case "mlp.gate_proj.bias", "mlp.up_proj.bias":
		ro.shape, ro.bias = []int{H}, true
	case "self_attn.rotary_emb.inv_freq": // a RoPE table some exports carry; not a weight
		ro.copy = true
	default:
		return role{}, fmt.Errorf("rotate: tensor %s is not part of a Llama decoder layer; cannot rotate a checkpoint holding it", name)
	}
	return ro, nil
}

// required lists the tensors every checkpoint of the config holds (model.New's set).
func (r *Rotator) required() []string {
	c := r.cfg
	names := []string{embedName, finalNormName}
	if !c.TiedEmbeddings {
		names = append(names, headName)
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		names = append(names, p+"input_layernorm.weight", p+"post_attention_layernorm.weight")
		for _, s := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			names = append(names, p+"self_attn."+s+".weight")
		}
		for _, s := range []string{"gate_proj", "up_proj", "down_proj"} {
			names = append(names, p+"mlp."+s+".weight")
		}
		if c.Bias {
			for _, s := range []string{"q_proj", "k_proj", "v_proj"} {
				names = append(names, p+"self_attn."+s+".bias")
			}
		}
	}
	return names
}
