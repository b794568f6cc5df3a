package model

import (
	"fmt"
	"sort"
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
}

// Model is a loaded Llama-family model. Its weights are float32 in memory.
type Model struct {
	Config checkpoint.LlamaConfig

	weights    map[string]*tensor.Tensor // every checkpoint tensor, as F32
	embed      []float32                 // [V, D]
	finalNorm  []float32                 // [D]
	classifier *Dense                    // lm_head (the embedding when tied); not pluggable
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
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !(cfg.RopeTheta > 0) || !(cfg.NormEps > 0) {
		return nil, fmt.Errorf("model: rope theta %g and rms norm eps %g must be positive", cfg.RopeTheta, cfg.NormEps)
	}
	if cfg.RopeScaling != "" {
		return nil, fmt.Errorf("model: rope scaling %q is not supported (plain RoPE only)", cfg.RopeScaling)
	}
	m := &Model{Config: cfg, weights: map[string]*tensor.Tensor{}, byName: map[string]*Linear{}}
	D, H, KV, V := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.Vocab
	get := func(name string, shape ...int) ([]float32, error) {
		t, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("model: missing tensor %s", name)
		}
		if !sameShape(t.Shape, shape) {
			return nil, fmt.Errorf("model: tensor %s has shape %v, want %v", name, t.Shape, shape)
		}
		if !t.DType.IsFloat() {
			return nil, fmt.Errorf("model: tensor %s has dtype %s, want F32, F16 or BF16", name, t.DType)
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
	var err error
	if m.embed, err = get("model.embed_tokens.weight", V, D); err != nil {
		return nil, err
	}
	if m.finalNorm, err = get("model.norm.weight", D); err != nil {
		return nil, err
	}
	cls := m.embed
	if !cfg.TiedEmbeddings {
		if cls, err = get("lm_head.weight", V, D); err != nil {
			return nil, err
		}
	}
	m.classifier = &Dense{W: cls, N: V, K: D}
	shapes := [7][2]int{{D, D}, {KV, D}, {KV, D}, {D, D}, {H, D}, {H, D}, {D, H}}
	m.layers = make([]layer, cfg.Layers)
	for l := range m.layers {
		ly := &m.layers[l]
		p := fmt.Sprintf("model.layers.%d.", l)
		if ly.attnNorm, err = get(p+"input_layernorm.weight", D); err != nil {
			return nil, err
		}
		if ly.ffnNorm, err = get(p+"post_attention_layernorm.weight", D); err != nil {
			return nil, err
		}
		for i, suf := range LinearSuffixes {
			name := p + suf
			w, err := get(name+".weight", shapes[i][0], shapes[i][1])
			if err != nil {
				return nil, err
			}
			var bias []float32
			if cfg.Bias && i <= linV {
				if bias, err = get(name+".bias", shapes[i][0]); err != nil {
					return nil, err
				}
			}
			ly.names[i] = name
			ly.lin[i] = &Dense{W: w, Bias: bias, N: shapes[i][0], K: shapes[i][1]}
			m.byName[name] = &ly.lin[i]
		}
	}
	return m, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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

// Linear returns the layer currently plugged in under name, or nil.
func (m *Model) Linear(name string) Linear {
	if p, ok := m.byName[name]; ok {
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
	wn, wk := (*p).Dims()
	if n, k := l.Dims(); n != wn || k != wk {
		return fmt.Errorf("model: linear for %s is [%d, %d], want [%d, %d]", name, n, k, wn, wk)
	}
	*p = l
	return nil
}

// ResetLinears plugs the full-precision Dense layers back in everywhere.
func (m *Model) ResetLinears() {
	for _, ly := range m.layers {
		for i, name := range ly.names {
			n, k := ly.lin[i].Dims()
			var bias []float32
			if b, ok := m.weights[name+".bias"]; ok {
				bias = b.F32()
			}
			*m.byName[name] = &Dense{W: m.weights[name+".weight"].F32(), Bias: bias, N: n, K: k}
		}
	}
}

// WeightNames lists the checkpoint tensors (see Weight), sorted.
func (m *Model) WeightNames() []string {
	names := make([]string, 0, len(m.weights))
	for n := range m.weights {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Weight returns the checkpoint tensor name (e.g. "model.layers.0.mlp.up_proj.weight") as
// F32, or nil if there is none. The tensor is shared: do not modify it.
func (m *Model) Weight(name string) *tensor.Tensor { return m.weights[name] }

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
