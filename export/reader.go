package export

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Reader reads an export one layer at a time from its mapped weights file, for exports
// larger than memory (Read copies every tensor). Layers decode as Read decodes them.
type Reader struct {
	ld *Loaded
	ck *safetensors.Checkpoint
}

// OpenReader opens an export directory; Close unmaps it.
func OpenReader(dir string) (*Reader, error) {
	ld, ck, _, err := scan(dir)
	if err != nil {
		return nil, err
	}
	return &Reader{ld: ld, ck: ck}, nil
}

// Config is the export's config.json (quantization_config included).
func (r *Reader) Config() map[string]any { return r.ld.Config }

// Quantized reports whether module (e.g. "model.layers.0.mlp.up_proj") is a quantized layer.
func (r *Reader) Quantized(module string) bool { return r.ld.fmt[module] != nil }

// Layer decodes the quantized layer module (ok false when it is not quantized).
func (r *Reader) Layer(module string) (l Layer, ok bool, err error) {
	if r.ld.fmt[module] == nil {
		return Layer{}, false, nil
	}
	l, err = r.ld.decodeLayer(module)
	if err != nil {
		return Layer{}, true, fmt.Errorf("export read %s: layer %q: %w", r.ld.Dir, module, err)
	}
	return l, true, nil
}

// Tensor returns a stored tensor (a view of the mapping, valid until Close).
func (r *Reader) Tensor(name string) (*tensor.Tensor, error) { return r.ck.Tensor(name) }

// Section locates a stored tensor's bytes in its file (safetensors.Checkpoint.Section).
func (r *Reader) Section(name string) (safetensors.Section, bool) { return r.ck.Section(name) }

// Release drops a tensor's mapped pages (safetensors.Checkpoint.Release).
func (r *Reader) Release(name string) error { return r.ck.Release(name) }

// ReleaseLayer releases every stored tensor of module (its "module.*" tensors): for a
// caller that decoded the layer into memory of its own.
func (r *Reader) ReleaseLayer(module string) {
	prefix := module + "."
	for _, n := range r.ck.Names() {
		if strings.HasPrefix(n, prefix) {
			r.ck.Release(n)
		}
	}
}

// Close unmaps the weights.
func (r *Reader) Close() error { return r.ck.Close() }
