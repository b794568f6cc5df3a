package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tensor"
)

// A lazy model (NewLazy) holds the embedding, the final norm and the classifier, and reads
// each decoder block's weights from the checkpoint the first time the block is used, as
// float32 (a BF16 or F16 checkpoint's linear weights stay 16-bit, see half.go). With a
// byte budget it keeps only the most recently used blocks resident, so a model much larger
// than memory runs block by block from a mapped (sharded, BF16) checkpoint; the bits are those of New's model (the same conversion of the same
// tensors). Plugged layers (SetLinear) survive a block's release: only what was read from
// the checkpoint is dropped and read again when the block is next used.

// TensorSource gives a checkpoint's tensors by name (checkpoint.Tensors is one). Tensors
// may be views of a mapped file: the model copies what it keeps.
type TensorSource interface {
	Tensor(name string) (*tensor.Tensor, error)
}

// LazyOptions configures NewLazy.
type LazyOptions struct {
	// MaxBlockBytes bounds the float32 bytes of the resident decoder blocks (BlockBytes):
	// using a block that does not fit releases the least recently used ones first, and a
	// block larger than the budget is a *BlockMemoryError. 0: no bound.
	MaxBlockBytes int64
	// Linear, when set, supplies the layer of a linear slot when its block is read (for
	// example the quantized layers of an export); nil means the checkpoint's weight, which
	// is then not read.
	Linear func(name string) (Linear, error)
	// Release, when set, is called with the names of the tensors just converted, so a mapped
	// source can drop their pages (the model keeps its own float32 copy).
	Release func(names []string)
	// Reuse, when set, may return a tensor of the embedding, final norm or lm_head (as
	// FixedTensor gives them: F32, or the checkpoint's BF16/F16 values for the embedding and
	// lm_head) from a caller that knows it equal to this model's (the embedding and lm_head
	// of an export and of its source), which the model then shares instead of reading its own.
	Reuse func(name string) *tensor.Tensor
	// HeadOnUse reads an untied lm_head when the head first runs instead of now (checked
	// now): see ReleaseHead.
	HeadOnUse bool
}

// BlockMemoryError says that one decoder block does not fit the memory budget.
type BlockMemoryError struct {
	Block  int
	Need   int64 // bytes the block needs resident
	Budget int64
}

func (e *BlockMemoryError) Error() string {
	return fmt.Sprintf("decoder block %d (model.layers.%d.*) needs %s resident, more than the budget of %s", e.Block, e.Block, humanBytes(e.Need), humanBytes(e.Budget))
}

type lazyState struct {
	mu       sync.Mutex
	src      TensorSource
	opt      LazyOptions
	resident []int // loaded blocks, least recently used first
	loads    int   // blocks read from the source so far
	// headOnUse: the lm_head is read by ensureHead (HeadOnUse); the classifier may be nil.
	headOnUse bool
}

// NewLazy builds a model that reads its decoder blocks from src when they are first used
// (see LazyOptions); the embedding, final norm and lm_head are read now. Errors name the
// tensor, as New's do; a missing or malformed block tensor surfaces when the block is used.
func NewLazy(cfg checkpoint.LlamaConfig, src TensorSource, opt LazyOptions) (*Model, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	m := newSkeleton(cfg)
	m.lazy = &lazyState{src: src, opt: opt}
	if err := m.loadFixed(m.lazyGet, m.lazyGetFixed); err != nil {
		return nil, err
	}
	if opt.MaxBlockBytes > 0 {
		for b := range m.layers {
			if need := m.BlockBytes(b); need > opt.MaxBlockBytes {
				return nil, &BlockMemoryError{Block: b, Need: need, Budget: opt.MaxBlockBytes}
			}
		}
	}
	return m, nil
}

func checkConfig(cfg checkpoint.LlamaConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if !(cfg.RopeTheta > 0) || !(cfg.NormEps > 0) {
		return fmt.Errorf("model: rope theta %g and rms norm eps %g must be positive", cfg.RopeTheta, cfg.NormEps)
	}
	if cfg.RopeScaling != "" {
		return fmt.Errorf("model: rope scaling %q is not supported (plain RoPE only)", cfg.RopeScaling)
	}
	return nil
}

// lazyGet reads one tensor from the lazy source (the getter of loadFixed and loadLayer).
func (m *Model) lazyGet(name string, shape ...int) ([]float32, error) {
	if t, err := m.reuse(name, shape); t != nil || err != nil {
		if err != nil {
			return nil, err
		}
		if t.DType != tensor.F32 {
			return nil, fmt.Errorf("model: reused %s is %s, want F32", name, t.DType)
		}
		m.weights[name] = t
		return t.F32(), nil
	}
	t, err := m.lazy.src.Tensor(name)
	if err != nil || t == nil {
		return nil, fmt.Errorf("model: missing tensor %s (%v)", name, err)
	}
	v, err := m.convert(name, t, shape)
	if err == nil && m.lazy.opt.Release != nil {
		m.lazy.opt.Release([]string{name})
	}
	return v, err
}

// lazyGetFixed reads the embedding or lm_head (loadFixed's fixedGetter): BF16 and F16
// tensors stay 16-bit (see half.go), others are converted to float32.
func (m *Model) lazyGetFixed(name string, shape ...int) (*tensor.Tensor, error) {
	if t, err := m.reuse(name, shape); t != nil || err != nil {
		if err == nil {
			m.weights[name] = t
		}
		return t, err
	}
	return m.lazyGetHalf(name, shape...)
}

// lazyGetHalf reads a tensor from the lazy source (a linear weight: loadLayer's
// fixedGetter) as lazyGetFixed does, without Reuse.
func (m *Model) lazyGetHalf(name string, shape ...int) (*tensor.Tensor, error) {
	t, err := m.lazy.src.Tensor(name)
	if err != nil || t == nil {
		return nil, fmt.Errorf("model: missing tensor %s (%v)", name, err)
	}
	if t.DType == tensor.BF16 || t.DType == tensor.F16 {
		h, err := halfCopy(name, t, shape)
		if err != nil {
			return nil, err
		}
		m.weights[name] = h
	} else if _, err := m.convert(name, t, shape); err != nil {
		return nil, err
	}
	if m.lazy.opt.Release != nil {
		m.lazy.opt.Release([]string{name})
	}
	return m.weights[name], nil
}

// reuse is the tensor LazyOptions.Reuse gives for name (nil: none), checked against shape.
func (m *Model) reuse(name string, shape []int) (*tensor.Tensor, error) {
	if m.lazy.opt.Reuse == nil {
		return nil, nil
	}
	t := m.lazy.opt.Reuse(name)
	if t == nil {
		return nil, nil
	}
	if !slices.Equal(t.Shape, shape) || len(t.Data) != tensor.ByteSize(t.DType, shape) {
		return nil, fmt.Errorf("model: reused %s has shape %v (%d bytes), want %v", name, t.Shape, len(t.Data), shape)
	}
	if m.lazy.opt.Release != nil {
		m.lazy.opt.Release([]string{name})
	}
	return t, nil
}

// BlockBytes is the float32 size of decoder block b's weights (norms, linear weights and
// biases): what the block occupies once resident.
func (m *Model) BlockBytes(b int) int64 { return BlockBytesOf(m.Config) }

// BlockBytesOf is the float32 size of one decoder block of cfg (every block is alike).
func BlockBytesOf(cfg checkpoint.LlamaConfig) int64 {
	n := int64(2 * cfg.Dim)
	for i, sh := range linearShapes(cfg) {
		n += int64(sh[0]) * int64(sh[1])
		if cfg.Bias && i <= linV {
			n += int64(sh[0])
		}
	}
	return 4 * n
}

// Lazy reports whether the model reads its blocks on demand (NewLazy).
func (m *Model) Lazy() bool { return m.lazy != nil }

// LoadBlock makes decoder block b resident (a no-op for a model built by New).
func (m *Model) LoadBlock(b int) error {
	if b < 0 || b >= len(m.layers) {
		return fmt.Errorf("model: block %d outside [0, %d)", b, len(m.layers))
	}
	if m.lazy == nil {
		return nil
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	return m.ensureLocked(b)
}

func (m *Model) ensureLocked(b int) error {
	lz := m.lazy
	if m.layers[b].loaded {
		i := slices.Index(lz.resident, b)
		lz.resident = append(slices.Delete(lz.resident, i, i+1), b)
		return nil
	}
	if max := lz.opt.MaxBlockBytes; max > 0 {
		need := m.BlockBytes(b)
		if need > max {
			return &BlockMemoryError{Block: b, Need: need, Budget: max}
		}
		for len(lz.resident) > 0 && int64(len(lz.resident)+1)*need > max {
			m.releaseLocked(lz.resident[0])
		}
	}
	if err := m.loadLayer(b, m.lazyGet, m.lazyGetHalf); err != nil {
		m.releaseLocked(b)
		return err
	}
	lz.resident = append(lz.resident, b)
	lz.loads++
	return nil
}

// ReleaseBlock drops what block b read from the checkpoint (plugged layers stay); it is
// read again when next used. A no-op for a model built by New.
func (m *Model) ReleaseBlock(b int) {
	if m.lazy == nil || b < 0 || b >= len(m.layers) {
		return
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	m.releaseLocked(b)
}

func (m *Model) releaseLocked(b int) {
	ly := &m.layers[b]
	ly.attnNorm, ly.ffnNorm, ly.loaded = nil, nil, false
	for i, name := range ly.names {
		if ly.own[i] {
			ly.lin[i], ly.own[i] = nil, false
		}
		delete(m.weights, name+".weight")
		delete(m.weights, name+".bias")
	}
	p := fmt.Sprintf("model.layers.%d.", b)
	delete(m.weights, p+"input_layernorm.weight")
	delete(m.weights, p+"post_attention_layernorm.weight")
	if i := slices.Index(m.lazy.resident, b); i >= 0 {
		m.lazy.resident = slices.Delete(m.lazy.resident, i, i+1)
	}
}

// ResetLinear plugs the full-precision layer name back in (the checkpoint weight it was
// read with; in a lazy model whose block is not resident, the block reads it when next
// used).
func (m *Model) ResetLinear(name string) error {
	b := blockOf(name)
	p, ok := m.byName[name]
	if !ok || b < 0 {
		return fmt.Errorf("model: no linear layer named %q (see LinearNames)", name)
	}
	if m.lazy != nil {
		m.lazy.mu.Lock()
		defer m.lazy.mu.Unlock()
	}
	ly := &m.layers[b]
	i := slices.Index(ly.names[:], name)
	w := m.weights[name+".weight"]
	if !ly.loaded || w == nil {
		if m.lazy == nil {
			return fmt.Errorf("model: no weight for %s", name)
		}
		ly.lin[i], ly.own[i] = nil, false // read with the block
		return nil
	}
	var bias []float32
	if t, ok := m.weights[name+".bias"]; ok {
		bias = t.F32()
	}
	*p, ly.own[i] = denseOf(w, bias, w.Shape[0], w.Shape[1]), true
	return nil
}

// ResetBlock plugs block b's full-precision layers back in (in a lazy model: drops its
// plugged layers; the checkpoint weights are read again when the block is next used).
func (m *Model) ResetBlock(b int) {
	if b < 0 || b >= len(m.layers) {
		return
	}
	if m.lazy == nil {
		ly := &m.layers[b]
		for i, name := range ly.names {
			n, k := ly.lin[i].Dims()
			var bias []float32
			if t, ok := m.weights[name+".bias"]; ok {
				bias = t.F32()
			}
			ly.lin[i] = denseOf(m.weights[name+".weight"], bias, n, k)
		}
		return
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	m.releaseLocked(b)
	ly := &m.layers[b]
	for i := range ly.lin {
		ly.lin[i], ly.own[i] = nil, false
	}
}

// ResidentBlocks lists the loaded blocks, least recently used first, and how many block
// reads the model has made (for a model built by New: every block, and 0).
func (m *Model) ResidentBlocks() ([]int, int) {
	if m.lazy == nil {
		out := make([]int, len(m.layers))
		for i := range out {
			out[i] = i
		}
		return out, 0
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	return slices.Clone(m.lazy.resident), m.lazy.loads
}

// blockOf returns the block index of a tensor or linear name under model.layers.N, or -1.
func blockOf(name string) int {
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return -1
	}
	b, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return b
}

// touch loads the block a name belongs to in a lazy model; the error is kept for callers
// that cannot return one (Linear, Weight: they then see nothing under the name).
func (m *Model) touch(name string) error {
	if m.lazy == nil {
		return nil
	}
	b := blockOf(name)
	if b < 0 || b >= len(m.layers) {
		if name == headName {
			return m.ensureHead()
		}
		return nil
	}
	return m.LoadBlock(b)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// FixedTensor returns the model's embedding, final norm or lm_head by checkpoint name
// (nil for any other name), for LazyOptions.Reuse: F32, or (a lazy model over a BF16 or F16
// checkpoint) the embedding and lm_head as stored. Callers must not change it.
func (m *Model) FixedTensor(name string) *tensor.Tensor {
	switch name {
	case "model.embed_tokens.weight", "model.norm.weight":
		return m.weights[name]
	case "lm_head.weight":
		if !m.Config.TiedEmbeddings && m.ensureHead() == nil {
			return m.weights[name]
		}
	}
	return nil
}
