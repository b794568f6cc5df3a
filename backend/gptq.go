package backend

import (
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/quant"
)

// GPTQRunner is implemented by backends that run GPTQ on the device (the CUDA backend:
// cuSOLVER factor, our column kernel, cuBLAS updates). Natural column order only: a
// backend returns an error for Options.ActOrder, and callers then use gptq.Quantize on the
// CPU. The result agrees with gptq.Quantize within the tolerance documented in cgo.
type GPTQRunner interface {
	GPTQ(name string, w []float32, rows, cols int, s quant.Scheme, h *gptq.Hessian, opt gptq.Options) (*quant.QTensor, gptq.Report, error)
}
