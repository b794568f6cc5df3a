package autoquant

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// ExportModel assembles the compressed-tensors export of src with the quantized layers:
// every other tensor is kept as stored, linear layers left in full precision and lm_head
// are listed in "ignore", and the tokenizer files are copied along.
func ExportModel(src *Source, m *model.Model, layers []*Layer) *export.Model {
	quantized := map[string]bool{}
	em := &export.Model{Config: map[string]any{}, Files: src.Files}
	for k, v := range src.Config {
		em.Config[k] = v
	}
	for _, l := range layers {
		quantized[l.Name] = true
		em.Layers = append(em.Layers, export.Layer{Name: l.Name, Q: l.Q, Act: l.Act})
	}
	for _, nt := range src.Tensors {
		if len(nt.Name) > 7 && quantized[nt.Name[:len(nt.Name)-7]] && nt.Name[len(nt.Name)-7:] == ".weight" {
			continue
		}
		em.Dense = append(em.Dense, nt)
	}
	for _, name := range m.LinearNames() {
		if !quantized[name] {
			em.Ignore = append(em.Ignore, name)
		}
	}
	em.Ignore = append(em.Ignore, "lm_head")
	return em
}

// IsExport reports whether dir holds a compressed-tensors export (config.json with a
// quantization_config).
func IsExport(dir string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return false
	}
	var c struct {
		Q json.RawMessage `json:"quantization_config"`
	}
	return json.Unmarshal(raw, &c) == nil && len(c.Q) > 0 && string(c.Q) != "null"
}

// LoadExported builds a model from a compressed-tensors export: the dense tensors as
// stored, and each quantized layer as the fake-quantized layer of its read-back QTensor
// (weights quant.Dequantize of the stored levels, the same int8 activation quantization).
// By the export's exact round trip this is the model that was evaluated before export.
func LoadExported(dir string) (*model.Model, *export.Loaded, error) {
	ld, err := export.Read(dir)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	ts := map[string]*tensor.Tensor{}
	for _, nt := range ld.Dense {
		ts[nt.Name] = nt.T
	}
	for _, l := range ld.Layers {
		ts[l.Name+".weight"] = tensor.FromF32(quant.Dequantize(l.Q), l.Q.Rows, l.Q.Cols)
	}
	m, err := model.New(*cfg, ts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, l := range ld.Layers {
		fq, err := fakeQuant(m, l.Name, l.Q, l.Act)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		if err := m.SetLinear(l.Name, fq); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
	}
	return m, ld, nil
}

// LoadAny loads a full-precision model (llama2.c file or HF directory), an export, or a
// checkpoint in autoq's own quantized layout.
func LoadAny(path string) (*model.Model, error) {
	if IsExport(path) {
		m, _, err := LoadExported(path)
		return m, err
	}
	if IsAutoqQuantized(path) {
		return LoadAutoqQuantized(path)
	}
	return model.Load(path)
}
