package export

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// StreamModel is what WriteStream exports: a Model whose quantized layers are loaded one at
// a time, so an export of a model larger than memory holds one layer in memory.
type StreamModel struct {
	Config map[string]any
	// Dense are tensors written unchanged (views of a mapped checkpoint are fine).
	Dense []safetensors.NamedTensor
	// Quantized names the quantized layers; Load returns one of them (it is called twice
	// per layer: once to lay the file out, once to write it, and must return the same
	// layer both times).
	Quantized []string
	Load      func(name string) (*Layer, error)
	Ignore    []string
	Files     []string
	Extra     map[string][]byte
	// Written, when set, is called with each tensor's name once it is written (to release a
	// mapped source's pages, or to count progress).
	Written func(name string)
	// Section, when set, locates a dense tensor's bytes in its safetensors file: those are
	// copied file to file (safetensors.Writer.CopyTensor) instead of read through the
	// mapping, which would fault the whole tensor into the process's resident set.
	Section func(name string) (safetensors.Section, bool)
}

// WriteStream writes the export Write would write for the same tensors and layers, bit for
// bit, holding one quantized layer at a time.
func WriteStream(dir string, m *StreamModel, opt Options) error {
	if err := opt.check(dir, m.Config); err != nil {
		return err
	}
	// Lay the file out: every tensor's name, dtype and shape, from the compressed layers.
	var infos []safetensors.TensorInfo
	dense := map[string]*tensor.Tensor{}
	owner := map[string]int{} // tensor -> quantized layer index
	for _, t := range m.Dense {
		if t.T == nil {
			return fmt.Errorf("export %s: tensor %q is nil", dir, t.Name)
		}
		if dense[t.Name] != nil {
			return fmt.Errorf("export %s: tensor %q appears twice", dir, t.Name)
		}
		dense[t.Name] = t.T
		infos = append(infos, safetensors.TensorInfo{Name: t.Name, DType: t.T.DType, Shape: t.T.Shape})
	}
	light := make([]Layer, len(m.Quantized))
	for i, name := range m.Quantized {
		l, ts, err := loadCompressed(m, name, opt.ScaleDType)
		if err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
		if dense[l.Name+".weight"] != nil {
			return fmt.Errorf("export %s: layer %q is both quantized and in the dense tensors (%s.weight)", dir, l.Name, l.Name)
		}
		light[i] = Layer{Name: l.Name, Q: &quant.QTensor{Name: l.Q.Name, Scheme: l.Q.Scheme, Rows: l.Q.Rows, Cols: l.Q.Cols}, Act: l.Act}
		for _, t := range ts {
			if _, dup := owner[t.Name]; dup || dense[t.Name] != nil {
				return fmt.Errorf("export %s: tensor %q appears twice", dir, t.Name)
			}
			owner[t.Name] = i
			infos = append(infos, safetensors.TensorInfo{Name: t.Name, DType: t.T.DType, Shape: t.T.Shape})
		}
	}
	sort.Slice(infos, func(a, b int) bool { return infos[a].Name < infos[b].Name })
	cfgJSON, err := configJSON(dir, m.Config, light, m.Ignore)
	if err != nil {
		return err
	}
	return atomicfile.Dir(dir, OutputKind, func(tmp string) error {
		w, err := safetensors.Create(filepath.Join(tmp, WeightsFile), infos, metadata(&Model{Layers: light}))
		if err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
		cur, curTensors := -1, map[string]*tensor.Tensor{}
		for _, in := range infos {
			data := []byte(nil)
			if t := dense[in.Name]; t != nil {
				if sec, ok := m.section(in.Name); ok && sec.Size == int64(len(t.Data)) {
					if err := w.CopyTensor(in.Name, sec); err != nil {
						w.Abort()
						return fmt.Errorf("export %s: %w", dir, err)
					}
					if m.Written != nil {
						m.Written(in.Name)
					}
					continue
				}
				data = t.Data
			} else {
				i := owner[in.Name]
				if i != cur { // a layer's tensors are contiguous in name order
					_, ts, err := loadCompressed(m, m.Quantized[i], opt.ScaleDType)
					if err != nil {
						w.Abort()
						return fmt.Errorf("export %s: %w", dir, err)
					}
					cur, curTensors = i, map[string]*tensor.Tensor{}
					for _, t := range ts {
						curTensors[t.Name] = t.T
					}
				}
				t := curTensors[in.Name]
				if t == nil || t.DType != in.DType || !slices.Equal(t.Shape, in.Shape) {
					w.Abort()
					return fmt.Errorf("export %s: layer %q changed between its two loads", dir, m.Quantized[i])
				}
				data = t.Data
			}
			if err := w.WriteTensor(in.Name, data); err != nil {
				w.Abort()
				return fmt.Errorf("export %s: %w", dir, err)
			}
			if m.Written != nil {
				m.Written(in.Name)
			}
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
		return writeSideFiles(dir, tmp, cfgJSON, m.Files, m.Extra)
	})
}

func (m *StreamModel) section(name string) (safetensors.Section, bool) {
	if m.Section == nil {
		return safetensors.Section{}, false
	}
	return m.Section(name)
}

func loadCompressed(m *StreamModel, name string, scaleDType tensor.DType) (*Layer, []safetensors.NamedTensor, error) {
	l, err := m.Load(name)
	if err != nil {
		return nil, nil, err
	}
	if l == nil || l.Q == nil {
		return nil, nil, fmt.Errorf("layer %q: no quantized tensor", name)
	}
	ts, err := compressLayer(l, scaleDType)
	return l, ts, err
}
