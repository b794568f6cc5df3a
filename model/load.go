package model

import (
	"fmt"
	"os"
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
	cfg, ts, err := readLlama2C(path, true)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := New(cfg, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func loadHF(dir string) (*Model, error) {
	return nil, fmt.Errorf("model: %s: Hugging Face directories are not supported yet", dir)
}
