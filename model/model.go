package model

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/autoq/autoq/checkpoint"

	"github.com/autoq/autoq/tensor"
)

// LinearSuffixes are the seven linear layers of a decoder layer (after
// "model.layers.N."), in the order the forward pass uses them.
var LinearSuffixes = [7]string{
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
}

const (
	linQ = iota
	linK
	linV
	linO
	linGate
	linUp
	linDown
)

// layer holds one decoder layer's norms and pluggable linears.
type layer struct {
	attnNorm, ffnNorm []float32
	names             [7]string
	lin               [7]Linear
	own               [7]bool // lin[i] was loaded with the block (released with it), not plugged
	loaded            bool    // norms and weights are in memory
}

// Model is a loaded Llama-family model. Its weights are float32 in memory.
type Model struct {
	Config checkpoint.LlamaConfig

	weights    map[string]*tensor.Tensor // every checkpoint tensor, as F32
	embed      table                     // [V, D]
	finalNorm  []float32                 // [D]
	classifier Linear                    // lm_head (the embedding when tied); not pluggable
	layers     []layer
	byName     map[string]*Linear // linear name -> slot in layers

	// interleaved selects llama2.c's RoPE pairing, for unpermuted q/k weights (tests).
	interleaved bool
	// exp64 makes softmax and SiLU use math.Exp in float64 instead of expf: the reference
	// the tests hold the fast path to.
	exp64 bool

	ropeMu   sync.Mutex
	cos, sin []float32 // [ropeLen, headDim/2]
	ropeLen  int

	// lazy is set for a model whose decoder blocks are read from a checkpoint when first
	// used (NewLazy); nil when New loaded everything.
	lazy *lazyState
}

// Hook observes the input x [M, K] of the linear layer name (for example
// "model.layers.0.self_attn.q_proj") just before it runs. q, k and v share one input, as do
// gate and up: the hook is called once per linear name with the same x. x is only valid
// during the call (the buffer is reused); copy what you keep.
type Hook func(name string, x []float32, M, K int)

// New builds a model from a config and HF-named tensors (F32, F16 or BF16; converted to
// F32). q/k weights must be in HF's half-split RoPE order. Missing tensors, wrong shapes and
// non-finite values are errors naming the tensor.
func New(cfg checkpoint.LlamaConfig, tensors map[string]*tensor.Tensor) (*Model, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	m := newSkeleton(cfg)
	get := func(name string, shape ...int) ([]float32, error) {
		t, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("model: missing tensor %s", name)
		}
		return m.convert(name, t, shape)
	}
	fixed := m.f32Fixed(get)
	if err := m.loadFixed(get, fixed); err != nil {
		return nil, err
	}
	for l := range m.layers {
		if err := m.loadLayer(l, get, fixed); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// getter reads one checkpoint tensor as float32 of the given shape (see convert).
type getter func(name string, shape ...int) ([]float32, error)

// newSkeleton is a model with its configuration and layer names but no weights.
func newSkeleton(cfg checkpoint.LlamaConfig) *Model {
	m := &Model{Config: cfg, weights: map[string]*tensor.Tensor{}, byName: map[string]*Linear{}}
	m.layers = make([]layer, cfg.Layers)
	for l := range m.layers {
		ly := &m.layers[l]
		for i, suf := range LinearSuffixes {
			ly.names[i] = fmt.Sprintf("model.layers.%d.%s", l, suf)
			m.byName[ly.names[i]] = &ly.lin[i]
		}
	}
	return m
}

// convert checks a checkpoint tensor's shape, dtype and values and returns it as float32
// (a copy: t may be a view of a mapped file), recording it under name for Weight.
func (m *Model) convert(name string, t *tensor.Tensor, shape []int) ([]float32, error) {
	if err := checkTensor(name, t, shape); err != nil {
		return nil, err
	}
	v := t.ToF32()
	if t.DType == tensor.F32 {
		v = append([]float32(nil), v...) // own the memory: t may be a view of a mapped file
	}
	if i := firstNonFinite(v); i >= 0 {
		return nil, fmt.Errorf("model: tensor %s has a non-finite value %g at element %d", name, v[i], i)
	}
	m.weights[name] = tensor.FromF32(v, shape...)
	return v, nil
}

// checkTensor checks a checkpoint tensor's shape, dtype and size.
func checkTensor(name string, t *tensor.Tensor, shape []int) error {
	if !slices.Equal(t.Shape, shape) {
		return fmt.Errorf("model: tensor %s has shape %v, want %v", name, t.Shape, shape)
	}
	if !t.DType.IsFloat() {
		return fmt.Errorf("model: tensor %s has dtype %s, want F32, F16 or BF16", name, t.DType)
	}
	if len(t.Data) != tensor.ByteSize(t.DType, t.Shape) {
		return fmt.Errorf("model: tensor %s has %d bytes, want %d", name, len(t.Data), tensor.ByteSize(t.DType, t.Shape))
	}
	return nil
}

// fixedGetter reads the embedding, lm_head or a linear weight, checked, as an F32 tensor or
// (a lazy model over a 16-bit checkpoint) as the checkpoint's values, recording it under
// name for Weight.
type fixedGetter func(name string, shape ...int) (*tensor.Tensor, error)

// f32Fixed is the fixedGetter of get: every tensor as float32.
func (m *Model) f32Fixed(get getter) fixedGetter {
	return func(name string, shape ...int) (*tensor.Tensor, error) {
		v, err := get(name, shape...)
		if err != nil {
			return nil, err
		}
		return tensor.FromF32(v, shape...), nil
	}
}

// loadFixed reads the tensors outside the decoder blocks: embedding, final norm, lm_head.
func (m *Model) loadFixed(get getter, fixed fixedGetter) error {
	cfg := m.Config
	D, V := cfg.Dim, cfg.Vocab
	emb, err := fixed("model.embed_tokens.weight", V, D)
	if err != nil {
		return err
	}
	m.embed, m.classifier = fixedMatrix(emb, V, D)
	if m.finalNorm, err = get("model.norm.weight", D); err != nil {
		return err
	}
	if !cfg.TiedEmbeddings && m.lazy != nil && m.lazy.opt.HeadOnUse {
		m.classifier = nil // read by ensureHead
		return m.checkHeadOnUse()
	}
	if !cfg.TiedEmbeddings {
		cls, err := fixed("lm_head.weight", V, D)
		if err != nil {
			return err
		}
		_, m.classifier = fixedMatrix(cls, V, D)
	}
	return nil
}

// linearShapes are the [out, in] shapes of the seven linear layers of a block.
func linearShapes(cfg checkpoint.LlamaConfig) [7][2]int {
	D, H, KV := cfg.Dim, cfg.HiddenDim, cfg.KVDim()
	return [7][2]int{{D, D}, {KV, D}, {KV, D}, {D, D}, {H, D}, {H, D}, {D, H}}
}

// loadLayer reads decoder block l's norms (get) and weights (weight). A linear slot
// already holding a plugged layer keeps it; the others get the full-precision Dense (or,
// in a lazy model, the layer its options supply).
func (m *Model) loadLayer(l int, get getter, weight fixedGetter) error {
	cfg := m.Config
	D := cfg.Dim
	shapes := linearShapes(cfg)
	ly := &m.layers[l]
	p := fmt.Sprintf("model.layers.%d.", l)
	var err error
	if ly.attnNorm, err = get(p+"input_layernorm.weight", D); err != nil {
		return err
	}
	if ly.ffnNorm, err = get(p+"post_attention_layernorm.weight", D); err != nil {
		return err
	}
	for i, name := range ly.names {
		if ly.lin[i] == nil && m.lazy != nil && m.lazy.opt.Linear != nil {
			lin, err := m.lazy.opt.Linear(name)
			if err != nil {
				return err
			}
			if lin != nil {
				if n, k := lin.Dims(); n != shapes[i][0] || k != shapes[i][1] {
					return fmt.Errorf("model: linear for %s is [%d, %d], want [%d, %d]", name, n, k, shapes[i][0], shapes[i][1])
				}
				ly.lin[i], ly.own[i] = lin, true
				continue
			}
		}
		// The weight is read even under a plugged layer (Weight serves it), where it may
		// also be absent (a lazy model over a quantized export).
		w, err := weight(name+".weight", shapes[i][0], shapes[i][1])
		if err != nil && ly.lin[i] != nil {
			continue
		}
		if err != nil {
			return err
		}
		var bias []float32
		if cfg.Bias && i <= linV {
			if bias, err = get(name+".bias", shapes[i][0]); err != nil {
				return err
			}
		}
		if ly.lin[i] == nil {
			ly.lin[i], ly.own[i] = denseOf(w, bias, shapes[i][0], shapes[i][1]), true
		}
	}
	ly.loaded = true
	return nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if x-x != 0 { // NaN or Inf
			return i
		}
	}
	return -1
}

// LinearNames lists the pluggable linear layers in forward order:
// model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj}. The classifier
// (lm_head) is not among them: it stays full precision.
func (m *Model) LinearNames() []string {
	names := make([]string, 0, 7*len(m.layers))
	for _, ly := range m.layers {
		names = append(names, ly.names[:]...)
	}
	return names
}

// Linear returns the layer currently plugged in under name, or nil (also when a lazy
// model cannot read the layer's block).
func (m *Model) Linear(name string) Linear {
	if p, ok := m.byName[name]; ok && m.touch(name) == nil {
		return *p
	}
	return nil
}

// SetLinear replaces the linear layer name (e.g. by a fake-quantized one). Its Dims must
// match the checkpoint's weight. Not safe to call during Forward.
func (m *Model) SetLinear(name string, l Linear) error {
	p, ok := m.byName[name]
	if !ok {
		return fmt.Errorf("model: no linear layer named %q (see LinearNames)", name)
	}
	if l == nil {
		return fmt.Errorf("model: nil linear for %s", name)
	}
	if err := m.touch(name); err != nil {
		return err
	}
	wn, wk := (*p).Dims()
	if n, k := l.Dims(); n != wn || k != wk {
		return fmt.Errorf("model: linear for %s is [%d, %d], want [%d, %d]", name, n, k, wn, wk)
	}
	*p = l
	if b := blockOf(name); b >= 0 {
		m.layers[b].own[slices.Index(m.layers[b].names[:], name)] = false
	}
	return nil
}

// ResetLinears plugs the full-precision Dense layers back in everywhere. A lazy model
// drops the plugged layers; the blocks read their weights again when next used.
func (m *Model) ResetLinears() {
	if m.lazy != nil {
		m.lazy.mu.Lock()
		defer m.lazy.mu.Unlock()
		for b := range m.layers {
			if m.layers[b].loaded {
				m.releaseLocked(b)
			}
			ly := &m.layers[b]
			for i := range ly.lin {
				ly.lin[i], ly.own[i] = nil, false
			}
		}
		return
	}
	for _, ly := range m.layers {
		for i, name := range ly.names {
			n, k := ly.lin[i].Dims()
			var bias []float32
			if b, ok := m.weights[name+".bias"]; ok {
				bias = b.F32()
			}
			*m.byName[name] = denseOf(m.weights[name+".weight"], bias, n, k)
		}
	}
}

// WeightNames lists the checkpoint tensors (see Weight), sorted (in a lazy model, those of
// the resident blocks).
func (m *Model) WeightNames() []string {
	return slices.Sorted(maps.Keys(m.weights))
}

// Weight returns the checkpoint tensor name (e.g. "model.layers.0.mlp.up_proj.weight") as
// F32 (the embedding, lm_head and linear weights of a lazy model over a BF16 or F16
// checkpoint: as stored; ToF32 reads any), or nil if there is none. The tensor is shared:
// do not modify it. A lazy model reads the tensor's block first.
func (m *Model) Weight(name string) *tensor.Tensor {
	if m.touch(name) != nil {
		return nil
	}
	return m.weights[name]
}

// rope returns the cos/sin tables for at least n positions, growing them when needed.
func (m *Model) rope(n int) (cos, sin []float32) {
	m.ropeMu.Lock()
	defer m.ropeMu.Unlock()
	if n > m.ropeLen {
		m.cos, m.sin = ropeTable(n, m.Config.HeadDim(), m.Config.RopeTheta)
		m.ropeLen = n
	}
	return m.cos, m.sin
}
