//go:build cuda

package cgo

import (
	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/quant"
)

var _ backend.GPTQRunner = (*Backend)(nil)

// GPTQ runs GPTQQuantize on the backend's device.
func (b *Backend) GPTQ(name string, w []float32, rows, cols int, s quant.Scheme, h *gptq.Hessian, opt gptq.Options) (*quant.QTensor, gptq.Report, error) {
	return GPTQQuantize(b.dev, name, w, rows, cols, s, h, opt)
}
