package autoquant

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/tensor"
)

// IsAutoqQuantized reports whether path holds autoq's own quantized layout
// (`autoq quantize --out`, docs/FORMAT.md).
func IsAutoqQuantized(path string) bool {
	src, err := checkpoint.OpenAny(path)
	if err != nil {
		return false
	}
	defer src.Close()
	qs, _, err := quantfile.ReadQuantized(src)
	return err == nil && len(qs) > 0
}

// LoadAutoqQuantized loads a checkpoint in autoq's own quantized layout as a model whose
// quantized linear layers are fake-quantized with exactly the stored levels and scales
// (weight-only: the layout stores no activation scales).
func LoadAutoqQuantized(dir string) (*model.Model, error) {
	src, err := checkpoint.OpenAny(dir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	qs, _, err := quantfile.ReadQuantized(src)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no autoq quantized weights (not written by autoq quantize)", dir)
	}
	if src.Config == nil {
		return nil, fmt.Errorf("%s: no usable config.json: %v", dir, src.ConfigErr)
	}
	parts := map[string]bool{}
	for name := range qs {
		for _, suf := range []string{quantfile.QWeightSuffix, quantfile.ScalesSuffix, quantfile.ZerosSuffix, quantfile.GIdxSuffix} {
			parts[name+suf] = true
		}
	}
	ts := map[string]*tensor.Tensor{}
	for _, n := range src.Names() {
		if parts[n] {
			continue
		}
		t, err := src.Tensor(n)
		if err != nil {
			return nil, err
		}
		ts[n] = t
	}
	for name, q := range qs {
		ts[name] = tensor.FromF32(quant.Dequantize(q), q.Rows, q.Cols)
	}
	m, err := model.New(*src.Config, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if err := PlugQuantized(m, qs); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// PlugQuantized replaces m's linear layers by fake-quantized ones with exactly the given
// weights (keyed by checkpoint tensor name, "<layer>.weight"), keeping each layer's bias.
func PlugQuantized(m *model.Model, qs map[string]*quant.QTensor) error {
	for name, q := range qs {
		layer := strings.TrimSuffix(name, ".weight")
		var bias []float32
		if b := m.Weight(layer + ".bias"); b != nil {
			bias = b.F32()
		}
		fq, err := model.NewFakeQuant(q, bias, quant.ActNone, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := m.SetLinear(layer, fq); err != nil {
			return err
		}
	}
	return nil
}
