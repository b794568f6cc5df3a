package rotate

import (
	"fmt"
	"slices"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Options configures a Rotator. The zero value rotates with randomized Hadamard matrices
// (random orthogonal ones for widths without a Hadamard matrix), residual stream and heads.
type Options struct {
	Kind    Kind // of both rotations
	NoHeads bool // leave v_proj's outputs and o_proj's inputs unrotated
}

// Source is where a Rotator reads the original tensors; checkpoint.Tensors is one.
type Source interface {
	Tensor(name string) (*tensor.Tensor, error)
}

// Rotator rewrites the tensors of one Llama-family checkpoint, one at a time (see the
// package comment for the transformation). It holds only the two rotations and does not
// change after New: Tensor may be called from several goroutines (it already spreads one
// tensor's rows over GOMAXPROCS).
type Rotator struct {
	cfg      checkpoint.LlamaConfig
	residual *Orthogonal // dim×dim
	head     *Orthogonal // head_dim×head_dim; nil with Options.NoHeads
}

// New draws the rotations for cfg from seed: the same (cfg, seed, opt) gives the same bits.
func New(cfg checkpoint.LlamaConfig, seed uint64, opt Options) (*Rotator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	r := &Rotator{cfg: cfg}
	var err error
	if r.residual, err = NewOrthogonal(opt.Kind, cfg.Dim, splitmix(seed)); err != nil {
		return nil, err
	}
	if !opt.NoHeads {
		if r.head, err = NewOrthogonal(opt.Kind, cfg.HeadDim(), splitmix(seed+1)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// splitmix is SplitMix64's output function: it turns seed and seed+1 into unrelated seeds
// for the residual and head rotations.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Config is the rotated checkpoint's config: the input's with TiedEmbeddings false (the
// classifier carries the final norm folded in, so it no longer equals the embedding, and
// Names adds lm_head.weight).
func (r *Rotator) Config() checkpoint.LlamaConfig {
	c := r.cfg
	c.TiedEmbeddings = false
	return c
}

// Residual is the residual-stream rotation Q.
func (r *Rotator) Residual() *Orthogonal { return r.residual }

// Head is the per-head rotation between v_proj and o_proj, nil with Options.NoHeads.
func (r *Rotator) Head() *Orthogonal { return r.head }

// Names returns the tensor names of the rotated checkpoint for a checkpoint holding in:
// in's order, with lm_head.weight appended when the input ties its embeddings. It is an
// error when in lacks a tensor the config needs or holds one this package cannot rotate.
func (r *Rotator) Names(in []string) ([]string, error) {
	for _, name := range in {
		if _, err := r.role(name); err != nil {
			return nil, err
		}
	}
	for _, name := range r.required() {
		if !slices.Contains(in, name) {
			return nil, fmt.Errorf("rotate: the checkpoint has no tensor %s", name)
		}
	}
	out := append([]string(nil), in...)
	if !slices.Contains(out, headName) {
		out = append(out, headName)
	}
	return out, nil
}

// Infos is Names for a writer that declares every tensor up front (safetensors.Create):
// the rotated checkpoint's tensors with their shapes and dtype F32 (set the dtype you
// write), from the source checkpoint's infos, whose shapes it checks before any work.
func (r *Rotator) Infos(in []safetensors.TensorInfo) ([]safetensors.TensorInfo, error) {
	names := make([]string, len(in))
	shapes := make(map[string][]int, len(in))
	for i, info := range in {
		names[i] = info.Name
		shapes[info.Name] = info.Shape
	}
	out, err := r.Names(names)
	if err != nil {
		return nil, err
	}
	infos := make([]safetensors.TensorInfo, len(out))
	for i, name := range out {
		ro, err := r.role(name)
		if err != nil {
			return nil, err
		}
		shape := ro.shape
		if ro.copy {
			shape = shapes[name]
		} else if got := shapes[ro.src]; !slices.Equal(got, shape) {
			return nil, fmt.Errorf("rotate: tensor %s has shape %v, want %v", ro.src, got, shape)
		}
		infos[i] = safetensors.TensorInfo{Name: name, DType: tensor.F32, Shape: append([]int(nil), shape...)}
	}
	return infos, nil
}

// Tensor returns the rotated tensor name (a name from Names), as F32, reading what it
// needs from src: the tensor itself and the RMSNorm weight folded into it (lm_head.weight
// of a tied checkpoint reads the embedding). Wrong shapes, non-float dtypes and NaN or Inf
// values are errors naming the tensor.
func (r *Rotator) Tensor(src Source, name string) (*tensor.Tensor, error) {
	ro, err := r.role(name)
	if err != nil {
		return nil, err
	}
	t, err := src.Tensor(ro.src)
	if err != nil {
		return nil, fmt.Errorf("rotate: %s: %w", name, err)
	}
	if ro.copy {
		if !t.DType.IsFloat() || len(t.Data) != tensor.ByteSize(t.DType, t.Shape) {
			return nil, fmt.Errorf("rotate: tensor %s: want F32, F16 or BF16 data of shape %v, got %s with %d bytes", name, t.Shape, t.DType, len(t.Data))
		}
		return t.Convert(tensor.F32), nil
	}
	w, err := values(ro.src, t, ro.shape)
	if err != nil {
		return nil, err
	}
	if ro.ones {
		for i := range w {
			w[i] = 1
		}
		return tensor.FromF32(w, ro.shape...), nil
	}
	if ro.bias {
		if ro.outRot != nil {
			rowsPass(w, 1, len(w), nil, ro.outRot)
		}
		return tensor.FromF32(w, ro.shape...), nil
	}
	rows, cols := ro.shape[0], ro.shape[1]
	var g []float32
	if ro.norm != "" {
		nt, err := src.Tensor(ro.norm)
		if err != nil {
			return nil, fmt.Errorf("rotate: %s: its norm: %w", name, err)
		}
		if g, err = values(ro.norm, nt, []int{cols}); err != nil {
			return nil, err
		}
	}
	if g != nil || ro.inRot != nil {
		rowsPass(w, rows, cols, g, ro.inRot)
	}
	if ro.outRot != nil {
		colsPass(w, rows, cols, ro.outRot)
	}
	return tensor.FromF32(w, ro.shape...), nil
}

// values returns a fresh float32 copy of t after checking its shape, dtype and values.
func values(name string, t *tensor.Tensor, shape []int) ([]float32, error) {
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("rotate: tensor %s has shape %v, want %v", name, t.Shape, shape)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("rotate: tensor %s has dtype %s, want F32, F16 or BF16", name, t.DType)
	}
	if len(t.Data) != tensor.ByteSize(t.DType, t.Shape) {
		return nil, fmt.Errorf("rotate: tensor %s has %d bytes, want %d for %s%v", name, len(t.Data), tensor.ByteSize(t.DType, t.Shape), t.DType, t.Shape)
	}
	v := t.ToF32()
	if t.DType == tensor.F32 {
		v = append([]float32(nil), v...)
	}
	for i, x := range v {
		if x-x != 0 {
			return nil, fmt.Errorf("rotate: tensor %s has a non-finite value %g at element %d", name, x, i)
		}
	}
	return v, nil
}
