package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

const llama2cHeaderBytes = 7 * 4

// ReadLlama2C reads a legacy llama2.c float32 checkpoint: a 7-int32 header (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means the classifier is stored separately), then float32 arrays token_embedding [V,D],
// rms_att [L,D], wq [L,D,D], wk [L,KV,D], wv [L,KV,D], wo [L,D,D], rms_ffn [L,D],
// w1 [L,H,D], w2 [L,D,H], w3 [L,H,D], rms_final [D], two legacy RoPE tables
// (seq_len*head_dim/2 floats each, skipped) and, when untied, wcls [V,D].
//
// It returns the config and the tensors under Hugging Face Llama names, with q_proj and
// k_proj permuted to HF's rotate_half convention (see the package comment). Tensors that
// need no permutation are views into the file's bytes.
func ReadLlama2C(path string) (*LlamaConfig, []safetensors.NamedTensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("llama2.c: %w", err)
	}
	return ParseLlama2C(path, raw)
}

// ParseLlama2C parses the bytes of a llama2.c checkpoint (see ReadLlama2C); path names the
// file in errors. Tensors that need no permutation are views into raw.
func ParseLlama2C(path string, raw []byte) (*LlamaConfig, []safetensors.NamedTensor, error) {
	if len(raw) < llama2cHeaderBytes {
		return nil, nil, fmt.Errorf("llama2.c: %s: file is %d bytes, shorter than the %d-byte header", path, len(raw), llama2cHeaderBytes)
	}
	if string(raw[:4]) == "PK\x03\x04" { // torch.save since PyTorch 1.6 writes a zip archive
		return nil, nil, fmt.Errorf("llama2.c: %s: this looks like a PyTorch (zip) checkpoint, not llama2.c; save it as safetensors instead", path)
	}
	if string(raw[:4]) == "ak42" {
		return nil, nil, fmt.Errorf("llama2.c: %s: versioned (ak42) checkpoints are not supported; export the legacy float32 format (llama2.c export.py --version 0)", path)
	}
	var h [7]int32
	for i := range h {
		h[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	vocab := int(h[5])
	tied := vocab > 0
	if !tied {
		vocab = -vocab
	}
	cfg := &LlamaConfig{
		Dim: int(h[0]), HiddenDim: int(h[1]), Layers: int(h[2]), Heads: int(h[3]), KVHeads: int(h[4]),
		Vocab: vocab, MaxSeq: int(h[6]), RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: tied,
		Architecture: "LlamaForCausalLM", TorchDType: "float32",
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("llama2.c: %s: bad header %v: %w", path, h, err)
	}
	// Sizes in checked uint64 arithmetic: a corrupt header must not overflow into a
	// plausible length (int64 products of int32 fields can wrap: layers*dim*dim is up to 2^93).
	D, H, L, V, KV := uint64(cfg.Dim), uint64(cfg.HiddenDim), uint64(cfg.Layers), uint64(cfg.Vocab), uint64(cfg.KVDim())
	rope := uint64(cfg.MaxSeq) * uint64(cfg.HeadDim()) / 2 // < 2^62: no overflow
	var sz checkedSize
	sz.add(V, D)
	sz.add(L, D)
	sz.add(L, D, D)
	sz.add(2, L, KV, D)
	sz.add(L, D, D)
	sz.add(L, D)
	sz.add(3, L, H, D)
	sz.add(D)
	sz.add(2, rope)
	if !tied {
		sz.add(V, D)
	}
	floats := sz.n
	sz.n = llama2cHeaderBytes
	sz.add(4, floats)
	if want := sz.n; sz.overflow || want != uint64(len(raw)) {
		what, need := "truncated", fmt.Sprint(want)
		switch {
		case sz.overflow:
			need = "more than 2^64"
		case uint64(len(raw)) > want:
			what = "has trailing bytes"
		}
		return nil, nil, fmt.Errorf("llama2.c: %s: file %s: %d bytes, but the header (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq %d) needs %s",
			path, what, len(raw), cfg.Dim, cfg.HiddenDim, cfg.Layers, cfg.Heads, cfg.KVHeads, h[5], cfg.MaxSeq, need)
	}
	r := &reader{data: raw, off: llama2cHeaderBytes}
	emb := r.take(V, D)
	rmsAtt := r.take(L, D)
	wq := r.take(L, D, D)
	wk := r.take(L, KV, D)
	wv := r.take(L, KV, D)
	wo := r.take(L, D, D)
	rmsFFN := r.take(L, D)
	w1 := r.take(L, H, D)
	w2 := r.take(L, D, H)
	w3 := r.take(L, H, D)
	rmsFinal := r.take(D)
	r.off += int(8 * rope) // the two legacy RoPE tables
	var out []safetensors.NamedTensor
	add := func(name string, t *tensor.Tensor) { out = append(out, safetensors.NamedTensor{Name: name, T: t}) }
	add("model.embed_tokens.weight", emb)
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"self_attn.q_proj.weight", PermuteRoPE(layer(wq, l), cfg.Heads))
		add(p+"self_attn.k_proj.weight", PermuteRoPE(layer(wk, l), cfg.KVHeads))
		add(p+"self_attn.v_proj.weight", layer(wv, l))
		add(p+"self_attn.o_proj.weight", layer(wo, l))
		add(p+"mlp.gate_proj.weight", layer(w1, l))
		add(p+"mlp.down_proj.weight", layer(w2, l))
		add(p+"mlp.up_proj.weight", layer(w3, l))
		add(p+"input_layernorm.weight", layer(rmsAtt, l))
		add(p+"post_attention_layernorm.weight", layer(rmsFFN, l))
	}
	add("model.norm.weight", rmsFinal)
	if !tied {
		add("lm_head.weight", r.take(V, D))
	}
	return cfg, out, nil
}

// checkedSize sums products of sizes, noting overflow instead of wrapping.
type checkedSize struct {
	n        uint64
	overflow bool
}

func (c *checkedSize) add(factors ...uint64) {
	p := uint64(1)
	for _, f := range factors {
		hi, lo := bits.Mul64(p, f)
		if hi != 0 {
			c.overflow = true
			return
		}
		p = lo
	}
	var carry uint64
	c.n, carry = bits.Add64(c.n, p, 0)
	c.overflow = c.overflow || carry != 0
}

type reader struct {
	data []byte
	off  int
}

// take returns the next float32 array of the given shape as a view (the length was
// checked against the whole file up front).
func (r *reader) take(shape ...uint64) *tensor.Tensor {
	s := make([]int, len(shape))
	n := uint64(4)
	for i, v := range shape {
		s[i] = int(v)
		n *= v
	}
	b := r.data[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	if len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		b = append([]byte(nil), b...)
	}
	return &tensor.Tensor{DType: tensor.F32, Shape: s, Data: b}
}

// layer returns slice l of a stacked [L, ...] tensor as a view.
func layer(t *tensor.Tensor, l int) *tensor.Tensor {
	inner := t.Shape[1:]
	n := tensor.ByteSize(t.DType, inner)
	return &tensor.Tensor{DType: t.DType, Shape: append([]int(nil), inner...), Data: t.Data[l*n : (l+1)*n : (l+1)*n]}
}

// PermuteRoPE converts a [heads*hd, cols] F32 projection from interleaved-pair RoPE
// (llama2.c, Meta) to Hugging Face's half-split layout: output row h*hd + p*hd/2 + i is
// input row h*hd + 2i + p. It returns a new tensor.
func PermuteRoPE(w *tensor.Tensor, heads int) *tensor.Tensor {
	return permuteRows(w, heads, false)
}

// UnpermuteRoPE is the inverse of PermuteRoPE (HF layout back to interleaved pairs).
func UnpermuteRoPE(w *tensor.Tensor, heads int) *tensor.Tensor {
	return permuteRows(w, heads, true)
}

func permuteRows(w *tensor.Tensor, heads int, inverse bool) *tensor.Tensor {
	rows, cols := w.Shape[0], w.Shape[1]
	hd := rows / heads
	src := w.F32()
	dst := make([]float32, len(src))
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for p := 0; p < 2; p++ {
				hf := h*hd + p*hd/2 + i
				meta := h*hd + 2*i + p
				to, from := hf, meta
				if inverse {
					to, from = meta, hf
				}
				copy(dst[to*cols:(to+1)*cols], src[from*cols:(from+1)*cols])
			}
		}
	}
	return tensor.FromF32(dst, rows, cols)
}
