package rotate

import (
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
)

// Checkpoint rotates a whole in-memory checkpoint: New(cfg, seed, opt), then every tensor
// of Names in order. It returns the rotated config (untied embeddings, see
// Rotator.Config) and F32 tensors.
func Checkpoint(cfg checkpoint.LlamaConfig, tensors []safetensors.NamedTensor, seed uint64, opt Options) (checkpoint.LlamaConfig, []safetensors.NamedTensor, error) {
	r, err := New(cfg, seed, opt)
	if err != nil {
		return checkpoint.LlamaConfig{}, nil, err
	}
	src, err := checkpoint.NewMemory(tensors, nil)
	if err != nil {
		return checkpoint.LlamaConfig{}, nil, err
	}
	names, err := r.Names(src.Names())
	if err != nil {
		return checkpoint.LlamaConfig{}, nil, err
	}
	out := make([]safetensors.NamedTensor, 0, len(names))
	for _, name := range names {
		t, err := r.Tensor(src, name)
		if err != nil {
			return checkpoint.LlamaConfig{}, nil, err
		}
		out = append(out, safetensors.NamedTensor{Name: name, T: t})
	}
	return r.Config(), out, nil
}
