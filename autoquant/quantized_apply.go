package autoquant

import (
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
)

// applyQuantizedDir plugs the quantized weights stored in dir into m as fake-quantized
// layers with exactly the stored levels and scales. dir is either autoq's own quantized
// layout (`autoq quantize --out`, docs/FORMAT.md) or a compressed-tensors export
// (`autoq export`/`autoq run`). It returns the number of layers replaced.
func applyQuantizedDir(m *model.Model, dir string) (int, error) {
	if IsAutoqQuantized(dir) {
		qm, err := LoadAutoqQuantized(dir)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, name := range qm.LinearNames() {
			if fq, ok := qm.Linear(name).(*model.FakeQuant); ok {
				if err := m.SetLinear(name, fq); err != nil {
					return n, err
				}
				n++
			}
		}
		return n, nil
	}
	ld, err := export.Read(dir)
	if err != nil {
		return 0, err
	}
	return eval.ApplyExport(m, ld)
}
