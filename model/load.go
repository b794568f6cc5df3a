package model

import (
	"fmt"
	"os"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Load reads a model: a llama2.c checkpoint file, or a Hugging Face directory
// (config.json + safetensors, sharded or not, F32/F16/BF16 converted to F32).
func Load(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if st.IsDir() {
		return loadHF(path)
	}
	cfg, named, err := checkpoint.ReadLlama2C(path)
	if err != nil {
		return nil, err
	}
	m, err := New(*cfg, byName(named))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// loadHF reads dir/config.json and the checkpoint's safetensors. New copies every tensor
// out of the mapped files, so they are closed before returning.
func loadHF(dir string) (*Model, error) {
	cfg, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	ts := make(map[string]*tensor.Tensor)
	for _, name := range ck.Names() {
		t, err := ck.Tensor(name)
		if err != nil {
			return nil, err
		}
		ts[name] = t
	}
	m, err := New(*cfg, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

func byName(named []safetensors.NamedTensor) map[string]*tensor.Tensor {
	ts := make(map[string]*tensor.Tensor, len(named))
	for _, nt := range named {
		ts[nt.Name] = nt.T
	}
	return ts
}
