package main

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
)

// applyQuantizedDir plugs the quantized weights stored in dir into m as fake-quantized
// layers with exactly the stored levels and scales. dir is either autoq's own quantized
// layout (`autoq quantize --out`, docs/FORMAT.md) or a compressed-tensors export
// (`autoq export`/`autoq run`). It returns the number of layers replaced.
func applyQuantizedDir(m *model.Model, dir string) (int, error) {
	src, err := checkpoint.OpenAny(dir)
	if err != nil {
		return 0, err
	}
	qs, _, err := checkpoint.ReadQuantized(src)
	if err != nil {
		src.Close()
		return 0, err
	}
	if len(qs) == 0 { // not autoq's layout: a compressed-tensors export
		src.Close()
		ld, err := export.Read(dir)
		if err != nil {
			return 0, err
		}
		return eval.ApplyExport(m, ld)
	}
	defer src.Close()
	n := 0
	for name, q := range qs {
		layer := strings.TrimSuffix(name, ".weight")
		var bias []float32
		if d, ok := m.Linear(layer).(*model.Dense); ok {
			bias = d.Bias
		}
		fq, err := model.NewFakeQuant(q, bias, model.ActNone, 0)
		if err != nil {
			return n, fmt.Errorf("%s: %s: %w", dir, name, err)
		}
		if err := m.SetLinear(layer, fq); err != nil {
			return n, fmt.Errorf("%s: %w", dir, err)
		}
		n++
	}
	return n, nil
}
