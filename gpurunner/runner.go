//go:build cuda

package gpurunner

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

func init() {
	model.RegisterCUDABlockRunner(func(i int, m *model.Model) (model.BlockRunner, error) {
		r, err := NewBlockRunner(i, m)
		if err != nil {
			return nil, err
		}
		return r, nil
	})
	model.RegisterCUDARunner(
		func(i int, m *model.Model, opt model.RunnerOptions) (model.Runner, error) {
			r, err := NewModelRunner(i, m, opt)
			if err != nil {
				return nil, err
			}
			return r, nil
		},
		func(i int, cfg checkpoint.LlamaConfig, s *quant.Recipe, seed uint64) (model.Runner, error) {
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
	kindW8A8                 // per-token activation quantization + the W8A8 kernel
	kindW4A16                // the W4A16 kernels on weights packed once in the tiled layout (layout.PackW4A16Tiled)
)

// devLinear is one linear layer's device weights.
type devLinear struct {
	name    string
	N, K    int
	kind    linKind
	fakeAct bool // F16 path of a W8A8 layer: fake per-token int8 quantization of the input
	label   string
	group   int
	w16     *cgo.Buffer // F16 [N, K]
	w8, w8s *cgo.Buffer // int8 levels [N, K], F32 scales [N]
	w4      *cgo.Buffer // packed nibbles (tiled layout); scales/zeros F16
	w4s     *cgo.Buffer
	w4z     *cgo.Buffer
	bias    *cgo.Buffer // F32 [N] or nil
}

type devLayer struct {
	attnNorm, ffnNorm *cgo.Buffer
	lin               [7]*devLinear
}

// ModelRunner runs a Llama-family prefill on one GPU (see model.Runner): F32
// residual stream, F16 activations into and out of every linear layer, cuBLAS F16 GEMMs for
// full-precision layers, the W8A8 and W4A16 kernels for quantized ones (which kernel at which
// M: the dispatch table, cgo.KernelFor with cgo.OpW8A8 and cgo.W4A16KernelFor with
// cgo.OpW4A16Tiled; dispatch.go).
type ModelRunner struct {
	dev    int
	cfg    checkpoint.LlamaConfig
	embed  *cgo.Buffer // F16 [V, D]
	cls    *cgo.Buffer // F16 [V, D]; the embedding when tied
	fnorm  *cgo.Buffer // F32 [D]
	layers []devLayer
	owned  []*cgo.Buffer

	cos, sin *cgo.Buffer // F32 [ropeLen, hd/2]
	ropeLen  int

	actM                              int
	x, xb, q, k, v, att, proj, h1, h2 *cgo.Buffer
	aq, ascale, fake, logits, ints    *cgo.Buffer
	aqOf                              *cgo.Buffer // the F16 activations whose int8 levels aq holds (nil: none)
	ws                                *cgo.Workspace
	scratch                           *cgo.Buffer // F16 weight of dequantize + cuBLAS (dispatch.go)
	closed                            bool
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
	if err := cgo.CheckDevice(dev); err != nil {
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
	return &ModelRunner{dev: dev, cfg: cfg, ws: cgo.NewWorkspace(dev)}, nil
}

// alloc allocates a buffer the runner frees on Close.
func (r *ModelRunner) alloc(n int) (*cgo.Buffer, error) {
	b, err := cgo.Alloc(r.dev, max(n, 16))
	if err != nil {
		return nil, err
	}
	r.owned = append(r.owned, b)
	return b, nil
}

func (r *ModelRunner) uploadBytes(what string, data []byte) (*cgo.Buffer, error) {
	b, err := r.alloc(len(data))
	if err != nil {
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	if err := b.CopyFromHost(0, data); err != nil {
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	return b, nil
}

func (r *ModelRunner) uploadF16(what string, v []float32) (*cgo.Buffer, error) {
	for i, x := range v {
		if math.Abs(float64(x)) > 65504 {
			return nil, fmt.Errorf("cuda model: %s: value %g at element %d overflows F16", what, x, i)
		}
	}
	return r.uploadBytes(what, cgo.AsBytes(tensor.F32ToF16Slice(v)))
}

func (r *ModelRunner) weightF32(m *model.Model, name string) ([]float32, error) {
	t := m.Weight(name)
	if t == nil {
		return nil, fmt.Errorf("cuda model: missing tensor %s", name)
	}
	return t.ToF32(), nil // a view of F32; the embedding and lm_head of a lazy model may be 16-bit
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
	if r.fnorm, err = r.uploadBytes("model.norm.weight", cgo.AsBytes(fn)); err != nil {
		return err
	}
	names := m.LinearNames()
	r.layers = make([]devLayer, cfg.Layers)
	for l := range r.layers {
		ly := &r.layers[l]
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, nw := range []struct {
			name string
			dst  **cgo.Buffer
		}{{p + "input_layernorm.weight", &ly.attnNorm}, {p + "post_attention_layernorm.weight", &ly.ffnNorm}} {
			w, err := r.weightF32(m, nw.name)
			if err != nil {
				return err
			}
			if *nw.dst, err = r.uploadBytes(nw.name, cgo.AsBytes(w)); err != nil {
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
			var sch *quant.Recipe
			if s, ok := opt.Layers[name]; ok {
				sch = &s
			}
			if ly.lin[i], err = r.prepareLinear(name, wt.ToF32(), wt.Shape[0], wt.Shape[1], bias, sch, opt); err != nil {
				return err
			}
		}
	}
	return nil
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

// Info describes the device.
func (r *ModelRunner) Info() backend.DeviceInfo {
	info, err := cgo.DeviceInfo(r.dev)
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
	if err := r.ws.Close(); err != nil && first == nil {
		first = err
	}
	for _, b := range []*cgo.Buffer{r.x, r.xb, r.q, r.k, r.v, r.att, r.proj, r.h1, r.h2, r.aq, r.ascale, r.fake, r.logits, r.ints, r.cos, r.sin, r.scratch} {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
