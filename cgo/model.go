//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"sort"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

func init() {
	model.RegisterCUDARunner(
		func(i int, m *model.Model, opt model.RunnerOptions) (model.Runner, error) {
			r, err := NewModelRunner(i, m, opt)
			if err != nil {
				return nil, err
			}
			return r, nil
		},
		func(i int, cfg checkpoint.LlamaConfig, s *model.LayerScheme, seed uint64) (model.Runner, error) {
			r, err := NewSyntheticModelRunner(i, cfg, s, seed)
			if err != nil {
				return nil, err
			}
			return r, nil
		})
}

type linKind int

const (
	kindF16   linKind = iota // F16 weights through cuBLAS (full precision or dequantized fallback)
	kindW8A8                 // act_quant_per_token + autoq_gemm_w8a8
	kindW4A16                // autoq_gemm_w4a16 on packed weights
)

// devLinear is one linear layer's device weights.
type devLinear struct {
	name    string
	N, K    int
	kind    linKind
	fakeAct bool // F16 path of a W8A8 layer: fake per-token int8 quantization of the input
	label   string
	group   int
	w16     *Buffer // F16 [N, K]
	w8, w8s *Buffer // int8 levels [N, K], F32 scales [N]
	w4      *Buffer // packed nibbles; scales/zeros F16
	w4s     *Buffer
	w4z     *Buffer
	bias    *Buffer // F32 [N] or nil
}

type devLayer struct {
	attnNorm, ffnNorm *Buffer
	lin               [7]*devLinear
}

// ModelRunner runs a Llama-family prefill on one GPU (see model.Runner): F32
// residual stream, F16 activations into and out of every linear layer, cuBLAS F16 GEMMs for
// full-precision layers, the W8A8 and W4A16 kernels for quantized ones.
type ModelRunner struct {
	dev    int
	cfg    checkpoint.LlamaConfig
	embed  *Buffer // F16 [V, D]
	cls    *Buffer // F16 [V, D]; the embedding when tied
	fnorm  *Buffer // F32 [D]
	layers []devLayer
	owned  []*Buffer

	cos, sin *Buffer // F32 [ropeLen, hd/2]
	ropeLen  int

	actM                               int
	x, xb, q, k, v, att, proj, h1, h2  *Buffer
	aq, ascale, fake, logits, ints, ws *Buffer
	intsLen                            int
	closed                             bool
}

// NewModelRunner uploads m's weights to device dev, quantizing the layers named in
// opt.Layers (weights packed once here).
func NewModelRunner(dev int, m *model.Model, opt model.RunnerOptions) (*ModelRunner, error) {
	r, err := newRunner(dev, m.Config)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, n := range m.LinearNames() {
		names[n] = true
	}
	for n := range opt.Layers {
		if !names[n] {
			r.Close()
			return nil, fmt.Errorf("cuda model: scheme given for %q, which is not a linear layer of the model (see LinearNames)", n)
		}
	}
	if err := r.loadWeights(m, opt); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func newRunner(dev int, cfg checkpoint.LlamaConfig) (*ModelRunner, error) {
	if err := CheckDevice(dev); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cuda model: %w", err)
	}
	hd := cfg.HeadDim()
	if hd%2 != 0 || hd > 256 || cfg.Heads%cfg.KVHeads != 0 {
		return nil, fmt.Errorf("cuda model: head dim %d (must be even and <= 256) or heads %d / kv heads %d not supported", hd, cfg.Heads, cfg.KVHeads)
	}
	if cfg.RopeScaling != "" {
		return nil, fmt.Errorf("cuda model: rope scaling %q is not supported (plain RoPE only)", cfg.RopeScaling)
	}
	return &ModelRunner{dev: dev, cfg: cfg}, nil
}

// alloc allocates a buffer the runner frees on Close.
func (r *ModelRunner) alloc(n int) (*Buffer, error) {
	b, err := Alloc(r.dev, max(n, 16))
	if err != nil {
		return nil, err
	}
	r.owned = append(r.owned, b)
	return b, nil
}

func (r *ModelRunner) uploadBytes(what string, data []byte) (*Buffer, error) {
	b, err := r.alloc(len(data))
	if err != nil {
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	if err := b.CopyFromHost(0, data); err != nil {
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	return b, nil
}

func (r *ModelRunner) uploadF16(what string, v []float32) (*Buffer, error) {
	for i, x := range v {
		if math.Abs(float64(x)) > 65504 {
			return nil, fmt.Errorf("cuda model: %s: value %g at element %d overflows F16", what, x, i)
		}
	}
	return r.uploadBytes(what, asBytes(tensor.F32ToF16Slice(v)))
}

func (r *ModelRunner) weightF32(m *model.Model, name string) ([]float32, error) {
	t := m.Weight(name)
	if t == nil {
		return nil, fmt.Errorf("cuda model: missing tensor %s", name)
	}
	return t.F32(), nil
}

func (r *ModelRunner) loadWeights(m *model.Model, opt model.RunnerOptions) error {
	cfg := r.cfg
	emb, err := r.weightF32(m, "model.embed_tokens.weight")
	if err != nil {
		return err
	}
	if r.embed, err = r.uploadF16("model.embed_tokens.weight", emb); err != nil {
		return err
	}
	r.cls = r.embed
	if !cfg.TiedEmbeddings {
		w, err := r.weightF32(m, "lm_head.weight")
		if err != nil {
			return err
		}
		if r.cls, err = r.uploadF16("lm_head.weight", w); err != nil {
			return err
		}
	}
	fn, err := r.weightF32(m, "model.norm.weight")
	if err != nil {
		return err
	}
	if r.fnorm, err = r.uploadBytes("model.norm.weight", asBytes(fn)); err != nil {
		return err
	}
	names := m.LinearNames()
	r.layers = make([]devLayer, cfg.Layers)
	for l := range r.layers {
		ly := &r.layers[l]
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, nw := range []struct {
			name string
			dst  **Buffer
		}{{p + "input_layernorm.weight", &ly.attnNorm}, {p + "post_attention_layernorm.weight", &ly.ffnNorm}} {
			w, err := r.weightF32(m, nw.name)
			if err != nil {
				return err
			}
			if *nw.dst, err = r.uploadBytes(nw.name, asBytes(w)); err != nil {
				return err
			}
		}
		for i := range ly.lin {
			name := names[7*l+i]
			wt := m.Weight(name + ".weight")
			if wt == nil {
				return fmt.Errorf("cuda model: missing tensor %s.weight", name)
			}
			var bias []float32
			if b := m.Weight(name + ".bias"); b != nil {
				bias = b.F32()
			}
			var sch *model.LayerScheme
			if s, ok := opt.Layers[name]; ok {
				sch = &s
			}
			if ly.lin[i], err = r.prepareLinear(name, wt.F32(), wt.Shape[0], wt.Shape[1], bias, sch, opt); err != nil {
				return err
			}
		}
	}
	return nil
}

// kernelReason returns "" when a kernel runs the layer, else why the F16 fallback does.
func kernelReason(name string, N, K int, sch *model.LayerScheme, noKernels bool) string {
	s := sch.Weight
	switch {
	case noKernels:
		return "kernels disabled"
	case sch.Act == model.ActPerToken:
		if s.Bits != 8 || !s.Symmetric || s.Granularity == quant.PerGroup {
			return fmt.Sprintf("the W8A8 kernel needs 8-bit symmetric per-channel or per-tensor weights, not %s", s)
		}
		if N%8 != 0 || K%16 != 0 {
			return fmt.Sprintf("the W8A8 kernel needs N %% 8 == 0 and K %% 16 == 0; shape [%d, %d]", N, K)
		}
		return ""
	case s.Bits == 4:
		group := K
		if s.Granularity == quant.PerGroup {
			group = s.GroupSize
		}
		if err := CheckW4A16Shape(name, N, K, group); err != nil {
			return err.Error()
		}
		return ""
	}
	return fmt.Sprintf("no kernel for weight-only %s", s)
}

// prepareLinear quantizes and uploads one layer (sch nil: full precision).
func (r *ModelRunner) prepareLinear(name string, w []float32, N, K int, bias []float32, sch *model.LayerScheme, opt model.RunnerOptions) (*devLinear, error) {
	l := &devLinear{name: name, N: N, K: K, kind: kindF16, label: "cublas-f16"}
	var err error
	if bias != nil {
		if l.bias, err = r.uploadBytes(name+".bias", asBytes(bias)); err != nil {
			return nil, err
		}
	}
	if sch == nil {
		l.w16, err = r.uploadF16(name+".weight", w)
		return l, err
	}
	if sch.Act == model.ActStatic {
		return nil, fmt.Errorf("cuda model: %s: static activation quantization is not supported by the GPU runner (use per-token w8a8)", name)
	}
	reason := kernelReason(name, N, K, sch, opt.NoKernels)
	if reason == "" {
		q, err := quant.Quantize(name, w, N, K, sch.Weight, opt.Search)
		if err != nil {
			return nil, fmt.Errorf("cuda model: %w", err)
		}
		if sch.Act == model.ActPerToken {
			lv, sc, err := W8A8Weights(q)
			if err != nil {
				return nil, fmt.Errorf("cuda model: %w", err)
			}
			if l.w8, err = r.uploadBytes(name+" int8 levels", asBytes(lv)); err != nil {
				return nil, err
			}
			if l.w8s, err = r.uploadBytes(name+" scales", asBytes(sc)); err != nil {
				return nil, err
			}
			l.kind, l.label = kindW8A8, "w8a8"
			return l, nil
		}
		p, perr := PackW4A16(q)
		if perr == nil {
			if l.w4, err = r.uploadBytes(name+" packed int4", p.Data); err != nil {
				return nil, err
			}
			if l.w4s, err = r.uploadBytes(name+" scales", asBytes(p.Scales)); err != nil {
				return nil, err
			}
			if p.Asym {
				if l.w4z, err = r.uploadBytes(name+" zeros", asBytes(p.Zeros)); err != nil {
					return nil, err
				}
			}
			l.kind, l.group, l.label = kindW4A16, p.Group, fmt.Sprintf("w4a16-g%d", p.Group)
			return l, nil
		}
		reason = perr.Error()
	}
	deq, err := dequantizedWeight(name, w, N, K, sch.Weight, opt.Search)
	if err != nil {
		return nil, err
	}
	if l.w16, err = r.uploadF16(name+" dequantized weight", deq); err != nil {
		return nil, err
	}
	l.fakeAct = sch.Act == model.ActPerToken
	l.label = "fallback-f16 (" + reason + ")"
	return l, nil
}

// dequantizedWeight is eval.FakeQuantizeWeight: the scheme fitted to K with
// quant.FitCols, quantized and dequantized.
func dequantizedWeight(name string, w []float32, N, K int, s quant.Scheme, opt quant.SearchOptions) ([]float32, error) {
	q, err := quant.Quantize(name, w, N, K, s.FitCols(K), opt)
	if err != nil {
		return nil, fmt.Errorf("cuda model: %w", err)
	}
	return quant.Dequantize(q), nil
}

// Kernels says which path runs each linear layer.
func (r *ModelRunner) Kernels() map[string]string {
	out := map[string]string{}
	for _, ly := range r.layers {
		for _, l := range ly.lin {
			if l != nil {
				out[l.name] = l.label
			}
		}
	}
	return out
}

// KernelSummary counts layers per path, sorted by path ("w8a8: 20, fallback-f16 (...): 15").
func KernelSummary(k map[string]string) string {
	counts := map[string]int{}
	for _, v := range k {
		counts[v]++
	}
	keys := make([]string, 0, len(counts))
	for v := range counts {
		keys = append(keys, v)
	}
	sort.Strings(keys)
	s := ""
	for i, v := range keys {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s: %d", v, counts[v])
	}
	return s
}

// Info describes the device.
func (r *ModelRunner) Info() backend.DeviceInfo {
	info, err := DeviceInfo(r.dev)
	if err != nil {
		return backend.DeviceInfo{Kind: "cuda", Index: r.dev, Name: "unknown: " + err.Error()}
	}
	return info
}

// Close frees every device buffer.
func (r *ModelRunner) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var first error
	for _, b := range r.owned {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.owned = nil
	for _, b := range []*Buffer{r.x, r.xb, r.q, r.k, r.v, r.att, r.proj, r.h1, r.h2, r.aq, r.ascale, r.fake, r.logits, r.ints, r.ws, r.cos, r.sin} {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
