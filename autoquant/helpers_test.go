package autoquant

import (
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/tensor"
)

func exportWrite(dir string, m *export.Model) error {
	return export.Write(dir, m, export.Options{ScaleDType: tensor.F16})
}
