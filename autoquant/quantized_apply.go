package autoquant

import (
	"fmt"
	"os"

	"github.com/autoq/autoq/model"
)

// loadQuantizedDir loads the quantized checkpoint in dir as a whole model, every tensor
// from dir (LoadAny: autoq's own layout or a compressed-tensors export), the quantized
// layers fake-quantized with exactly the stored levels and scales. Its embedding, norms
// and lm_head are dir's too, so a checkpoint quantized after a rotation (--rotate: other
// norms, an untied lm_head) evaluates as what it is. It must have ref's shape.
func loadQuantizedDir(dir string, ref *model.Model) (*model.Model, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("quantized checkpoint: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s: a quantized checkpoint is a directory (autoq quantize --out or a compressed-tensors export), not a file", dir)
	}
	if !IsExport(dir) && !IsAutoqQuantized(dir) {
		return nil, fmt.Errorf("%s: not a quantized checkpoint (neither autoq quantize --out nor a compressed-tensors export)", dir)
	}
	m, err := LoadAny(dir)
	if err != nil {
		return nil, err
	}
	a, b := m.Config, ref.Config
	if a.Dim != b.Dim || a.HiddenDim != b.HiddenDim || a.Layers != b.Layers || a.Heads != b.Heads || a.KVHeads != b.KVHeads || a.Vocab != b.Vocab {
		return nil, fmt.Errorf("%s: not a quantization of the model (dim %d, hidden %d, %d layers, %d/%d heads, vocab %d; the model has %d, %d, %d, %d/%d, %d)",
			dir, a.Dim, a.HiddenDim, a.Layers, a.Heads, a.KVHeads, a.Vocab, b.Dim, b.HiddenDim, b.Layers, b.Heads, b.KVHeads, b.Vocab)
	}
	return m, nil
}
