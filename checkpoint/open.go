package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Tensors is a read-only set of named tensors: a safetensors checkpoint or an in-memory
// model (a converted llama2.c file, the synthetic model).
type Tensors interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	Tensor(name string) (*tensor.Tensor, error)
	Metadata() map[string]string
	Close() error
}

// Memory is an in-memory Tensors.
type Memory struct {
	names  []string
	byName map[string]*tensor.Tensor
	meta   map[string]string
}

// NewMemory wraps tensors (not copied) in their given order. Names must be unique.
func NewMemory(tensors []safetensors.NamedTensor, meta map[string]string) (*Memory, error) {
	m := &Memory{byName: map[string]*tensor.Tensor{}, meta: meta}
	for _, nt := range tensors {
		if _, dup := m.byName[nt.Name]; dup {
			return nil, fmt.Errorf("tensor %q: duplicate name", nt.Name)
		}
		if nt.T == nil || len(nt.T.Data) != tensor.ByteSize(nt.T.DType, nt.T.Shape) {
			return nil, fmt.Errorf("tensor %q: missing data or wrong size", nt.Name)
		}
		m.names = append(m.names, nt.Name)
		m.byName[nt.Name] = nt.T
	}
	return m, nil
}

func (m *Memory) Names() []string { return append([]string(nil), m.names...) }

func (m *Memory) Info(name string) (safetensors.TensorInfo, bool) {
	t, ok := m.byName[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return safetensors.TensorInfo{Name: name, DType: t.DType, Shape: append([]int(nil), t.Shape...), Size: int64(len(t.Data))}, true
}

func (m *Memory) Tensor(name string) (*tensor.Tensor, error) {
	t, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return t, nil
}

func (m *Memory) Metadata() map[string]string {
	out := map[string]string{}
	for k, v := range m.meta {
		out[k] = v
	}
	return out
}

func (m *Memory) Close() error { return nil }

// Opened is a checkpoint opened by OpenAny: its tensors, its config when one is known
// (config.json beside the weights, or the llama2.c header), and the directory holding it
// ("" for a llama2.c file).
type Opened struct {
	Tensors
	Config    *LlamaConfig
	ConfigErr error // why config.json beside the weights could not be read (Config is nil)
	Dir       string
}

// OpenAny opens path as a llama2.c checkpoint (a file ending in .bin) or anything
// safetensors.OpenCheckpoint takes. The config is read from config.json beside the
// weights when present; one that cannot be read (say, an architecture autoq does not run)
// leaves Config nil and ConfigErr set, since weight-only work does not need it.
func OpenAny(path string) (*Opened, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() && strings.HasSuffix(path, ".bin") {
		cfg, ts, err := ReadLlama2C(path)
		if err != nil {
			return nil, err
		}
		m, err := NewMemory(ts, nil)
		if err != nil {
			return nil, err
		}
		return &Opened{Tensors: m, Config: cfg}, nil
	}
	c, err := safetensors.OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	dir := path
	if !st.IsDir() {
		dir = filepath.Dir(path)
	}
	o := &Opened{Tensors: c, Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		o.Config, o.ConfigErr = ReadConfig(dir)
	}
	return o, nil
}
