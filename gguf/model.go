package gguf

import (
	"fmt"
	"slices"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tensor"
)

// Quantizer quantizes one weight matrix [rows, cols] to block format t.
type Quantizer func(name string, t Type, w []float32, rows, cols int) (*Quantized, error)

// RefQuantizer quantizes as llama.cpp's ggml_quantize_chunk does without an importance
// matrix (what llama-quantize writes): WriteLlama's default.
func RefQuantizer(name string, t Type, w []float32, rows, cols int) (*Quantized, error) {
	return RefQuantize(name, t, w, rows, cols, nil)
}

// ModelOptions configures WriteLlama. Tensors are named as autoq's checkpoints name them
// (Hugging Face names: "model.layers.0.mlp.down_proj.weight").
type ModelOptions struct {
	Name string // general.name
	// Types gives the type of each weight matrix; matrices not listed get Default (F32 when
	// unset). 1-D tensors (norms, biases) are always F32.
	Types   map[string]Type
	Default Type
	// Quantized holds pre-quantized matrices (autoq's levels on a GGUF grid), in the row
	// order autoq holds them (Hugging Face's, for q_proj/k_proj too: the writer permutes
	// their rows like the float weights). Their type overrides Types.
	Quantized map[string]*Quantized
	// Quantize quantizes block-format matrices that have no entry in Quantized;
	// RefQuantizer when nil.
	Quantize Quantizer
	// Vocab is the tokenizer metadata (required).
	Vocab *Vocab
}

// WriteLlama writes a GGUF file for llama.cpp's "llama" architecture from an autoq
// checkpoint (checkpoint.OpenAny: llama2.c or Hugging Face) and its config.
//
// RoPE: llama.cpp's llama architecture rotates adjacent pairs (2i, 2i+1) of each head, as
// llama2.c and Meta's checkpoints do. autoq holds q_proj/k_proj in Hugging Face's
// rotate_half row order whatever the source (ReadLlama2C permutes llama2.c weights on
// load), so WriteLlama applies checkpoint.UnpermuteRoPE to q_proj (over the heads) and
// k_proj (over the KV heads), as llama.cpp's own Hugging Face converter does.
//
// A matrix whose width is not a multiple of its type's block size (stories260K's 172-wide
// down_proj for 32, anything not a multiple of 256 for the k-quants) is refused with an
// error naming the tensor, width and type: keep it F16/F32. The file is written to a
// temporary name and renamed into place.
func WriteLlama(path string, src checkpoint.Tensors, cfg *checkpoint.LlamaConfig, opt ModelOptions) error {
	if cfg == nil {
		return fmt.Errorf("gguf: %s: no model config", path)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("gguf: %s: config: %w", path, err)
	}
	switch cfg.Architecture {
	case "", "LlamaForCausalLM", "MistralForCausalLM":
	default:
		return fmt.Errorf("gguf: %s: architecture %q is not written as llama.cpp's llama architecture (Llama and Mistral only)", path, cfg.Architecture)
	}
	if cfg.RopeScaling != "" {
		return fmt.Errorf("gguf: %s: rope scaling %q is not supported", path, cfg.RopeScaling)
	}
	if opt.Vocab == nil {
		return fmt.Errorf("gguf: %s: no vocabulary (ModelOptions.Vocab)", path)
	}
	if len(opt.Vocab.Tokens) != cfg.Vocab {
		return fmt.Errorf("gguf: %s: the tokenizer has %d tokens but the model's vocabulary has %d", path, len(opt.Vocab.Tokens), cfg.Vocab)
	}
	plan, err := planTensors(src, cfg, opt)
	if err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	kvs, err := llamaKVs(cfg, opt, plan)
	if err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	infos := make([]TensorInfo, len(plan))
	for i, p := range plan {
		infos[i] = TensorInfo{Name: p.gguf, Shape: p.shape, Type: p.typ}
	}
	w, err := Create(path, kvs, infos)
	if err != nil {
		return err
	}
	quantize := opt.Quantize
	if quantize == nil {
		quantize = RefQuantizer
	}
	for _, p := range plan {
		data, err := p.encode(src, opt.Quantized[p.hf], quantize)
		if err != nil {
			w.Abort()
			return fmt.Errorf("gguf: %s: %w", path, err)
		}
		if err := w.WriteTensor(p.gguf, data); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// planned is one tensor to write.
type planned struct {
	hf, gguf string
	shape    []int
	typ      Type
	ropeHead int // > 0: unpermute the rows over this many heads
}

// planTensors maps autoq's names to GGUF's and fixes each tensor's type.
func planTensors(src checkpoint.Tensors, cfg *checkpoint.LlamaConfig, opt ModelOptions) ([]planned, error) {
	D, H, KV, V := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.Vocab
	var plan []planned
	add := func(hf, gg string, heads int, shape ...int) error {
		info, ok := src.Info(hf)
		if !ok {
			return fmt.Errorf("missing tensor %s", hf)
		}
		if !slices.Equal(info.Shape, shape) {
			return fmt.Errorf("tensor %s has shape %v, want %v", hf, info.Shape, shape)
		}
		if !info.DType.IsFloat() {
			return fmt.Errorf("tensor %s has dtype %s, want F32, F16 or BF16", hf, info.DType)
		}
		typ := F32
		if len(shape) == 2 {
			typ = opt.Default
			if t, ok := opt.Types[hf]; ok {
				typ = t
			}
			if q, ok := opt.Quantized[hf]; ok {
				typ = q.Type
				if q.Rows != shape[0] || q.Cols != shape[1] {
					return fmt.Errorf("tensor %s: pre-quantized %dx%d, the tensor is %v", hf, q.Rows, q.Cols, shape)
				}
			}
			if !typ.Quantizable() {
				return fmt.Errorf("tensor %s: type %s cannot be written (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K)", hf, typ)
			}
			if shape[1]%typ.BlockSize() != 0 {
				return fmt.Errorf("tensor %s: width %d is not a multiple of %s's block size %d; keep it F16 or F32", hf, shape[1], typ, typ.BlockSize())
			}
		} else if t, ok := opt.Types[hf]; ok && t != F32 {
			return fmt.Errorf("tensor %s: 1-D tensors are written F32, not %s", hf, t)
		}
		plan = append(plan, planned{hf: hf, gguf: gg, shape: shape, typ: typ, ropeHead: heads})
		return nil
	}
	steps := []func() error{
		func() error { return add("model.embed_tokens.weight", "token_embd.weight", 0, V, D) },
		func() error { return add("model.norm.weight", "output_norm.weight", 0, D) },
	}
	if !cfg.TiedEmbeddings {
		steps = append(steps, func() error { return add("lm_head.weight", "output.weight", 0, V, D) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	for l := 0; l < cfg.Layers; l++ {
		p, b := fmt.Sprintf("model.layers.%d.", l), fmt.Sprintf("blk.%d.", l)
		layer := []struct {
			hf, gg string
			heads  int
			shape  []int
		}{
			{"input_layernorm.weight", "attn_norm.weight", 0, []int{D}},
			{"self_attn.q_proj.weight", "attn_q.weight", cfg.Heads, []int{D, D}},
			{"self_attn.k_proj.weight", "attn_k.weight", cfg.KVHeads, []int{KV, D}},
			{"self_attn.v_proj.weight", "attn_v.weight", 0, []int{KV, D}},
			{"self_attn.o_proj.weight", "attn_output.weight", 0, []int{D, D}},
			{"post_attention_layernorm.weight", "ffn_norm.weight", 0, []int{D}},
			{"mlp.gate_proj.weight", "ffn_gate.weight", 0, []int{H, D}},
			{"mlp.up_proj.weight", "ffn_up.weight", 0, []int{H, D}},
			{"mlp.down_proj.weight", "ffn_down.weight", 0, []int{D, H}},
		}
		if cfg.Bias {
			layer = append(layer, []struct {
				hf, gg string
				heads  int
				shape  []int
			}{
				{"self_attn.q_proj.bias", "attn_q.bias", cfg.Heads, []int{D}},
				{"self_attn.k_proj.bias", "attn_k.bias", cfg.KVHeads, []int{KV}},
				{"self_attn.v_proj.bias", "attn_v.bias", 0, []int{KV}},
			}...)
		}
		for _, t := range layer {
			if err := add(p+t.hf, b+t.gg, t.heads, t.shape...); err != nil {
				return nil, err
			}
		}
	}
	return plan, nil
}

// encode reads, reorders and encodes one tensor.
func (p planned) encode(src checkpoint.Tensors, pre *Quantized, quantize Quantizer) ([]byte, error) {
	rows, cols := 1, p.shape[len(p.shape)-1]
	if len(p.shape) == 2 {
		rows = p.shape[0]
	}
	if pre != nil {
		q := pre
		if p.ropeHead > 0 {
			q = permuteQuantizedRows(pre, ropeRowOrder(rows, p.ropeHead))
		}
		return q.Encode()
	}
	t, err := src.Tensor(p.hf)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", p.hf, err)
	}
	w := t.ToF32()
	if p.ropeHead > 0 {
		shape := []int{rows, cols}
		if len(p.shape) == 1 { // a bias: its entries follow the rows
			shape = []int{cols, 1}
		}
		w = checkpoint.UnpermuteRoPE(tensor.FromF32(w, shape...), p.ropeHead).F32()
	}
	switch p.typ {
	case F32, F16, BF16:
		return EncodeFloat(p.hf, p.typ, w)
	}
	q, err := quantize(p.hf, p.typ, w, rows, cols)
	if err != nil {
		return nil, err
	}
	return q.Encode()
}

// ropeRowOrder returns, for each output row (llama.cpp's adjacent-pair order), the input
// row (Hugging Face's half-split order) it comes from: checkpoint.UnpermuteRoPE's mapping.
func ropeRowOrder(rows, heads int) []int {
	hd := rows / heads
	from := make([]int, rows)
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for p := 0; p < 2; p++ {
				from[h*hd+2*i+p] = h*hd + p*hd/2 + i
			}
		}
	}
	return from
}

// permuteQuantizedRows returns q with row r taken from row from[r]: blocks never cross
// rows, so the codes and every per-block parameter move with their row.
func permuteQuantizedRows(q *Quantized, from []int) *Quantized {
	out := &Quantized{Grid: q.Grid}
	out.Q = permuteRows(q.Q, q.Rows, from)
	out.Sc, out.Mn = permuteRows(q.Sc, q.Rows, from), permuteRows(q.Mn, q.Rows, from)
	out.D, out.M = permuteRows(q.D, q.Rows, from), permuteRows(q.M, q.Rows, from)
	return out
}

// permuteRows returns src, laid out as rows equal rows, with row r taken from row from[r];
// nil (a type without that per-block parameter) stays nil.
func permuteRows[T any](src []T, rows int, from []int) []T {
	if src == nil {
		return nil
	}
	dst := make([]T, len(src))
	n := len(src) / rows
	for r, f := range from {
		copy(dst[r*n:(r+1)*n], src[f*n:(f+1)*n])
	}
	return dst
}
