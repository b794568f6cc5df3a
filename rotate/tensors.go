package rotate

import (
	"fmt"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Tensors is a checkpoint.Tensors that reads as the rotated checkpoint: each tensor is
// rotated when it is asked for (memory: one tensor and the norm folded into it), so a job
// that streams a checkpoint (quantize, calibrate) takes a rotated one unchanged. Tensors
// keep their source dtype (the rotation is computed in float64 and F32 as Rotator.Tensor
// does, then rounded once to that dtype), so the result is what writing the rotated
// checkpoint in the source's dtype and reading it back gives. lm_head.weight is added when
// the source ties its embeddings (in the embedding's dtype); its config is Rotator.Config.
type Tensors struct {
	r     *Rotator
	src   checkpoint.Tensors
	names []string
	infos map[string]safetensors.TensorInfo
}

// Wrap checks src against the rotator's config (every tensor known, shapes right) and
// returns the rotated view of it. Closing the view closes src.
func (r *Rotator) Wrap(src checkpoint.Tensors) (*Tensors, error) {
	var in []safetensors.TensorInfo
	for _, name := range src.Names() {
		info, ok := src.Info(name)
		if !ok {
			return nil, fmt.Errorf("rotate: no info for tensor %s", name)
		}
		if !info.DType.IsFloat() {
			return nil, fmt.Errorf("rotate: tensor %s has dtype %s, want F32, F16 or BF16", name, info.DType)
		}
		in = append(in, info)
	}
	out, err := r.Infos(in)
	if err != nil {
		return nil, err
	}
	t := &Tensors{r: r, src: src, infos: make(map[string]safetensors.TensorInfo, len(out))}
	for _, info := range out {
		ro, err := r.role(info.Name)
		if err != nil {
			return nil, err
		}
		srcInfo, _ := src.Info(ro.src)
		info.DType = srcInfo.DType
		t.names = append(t.names, info.Name)
		t.infos[info.Name] = info
	}
	return t, nil
}

// Names lists the rotated checkpoint's tensors: the source's order, lm_head.weight last
// when it was added.
func (t *Tensors) Names() []string { return append([]string(nil), t.names...) }

// Info is a tensor's name, shape and (source) dtype.
func (t *Tensors) Info(name string) (safetensors.TensorInfo, bool) {
	info, ok := t.infos[name]
	return info, ok
}

// Tensor rotates tensor name and returns it in its Info dtype.
func (t *Tensors) Tensor(name string) (*tensor.Tensor, error) {
	info, ok := t.infos[name]
	if !ok {
		return nil, fmt.Errorf("rotate: no tensor %s in the rotated checkpoint", name)
	}
	v, err := t.r.Tensor(t.src, name)
	if err != nil {
		return nil, err
	}
	if info.DType == tensor.F32 {
		return v, nil
	}
	return v.Convert(info.DType), nil
}

// Metadata is the source's safetensors metadata.
func (t *Tensors) Metadata() map[string]string { return t.src.Metadata() }

// Close closes the source.
func (t *Tensors) Close() error { return t.src.Close() }

var _ checkpoint.Tensors = (*Tensors)(nil)
