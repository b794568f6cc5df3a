package awq

import (
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// CollectQuantizer is the search quantizer that matches collect.QuantizeModel(method,
// clip, s, opt): the scheme s.FitCols(cols), round-to-nearest or GPTQ with the
// given clipping search, dequantized.
func CollectQuantizer(method collect.Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) Quantizer {
	return func(name string, w []float32, rows, cols int, h *gptq.Hessian) ([]float32, error) {
		q, _, err := collect.QuantizeMatrix(name, w, rows, cols, h, method, clip, s, opt)
		if err != nil {
			return nil, err
		}
		return quant.Dequantize(q), nil
	}
}

// CollectModelQuantizer quantizes a whole model like collect.QuantizeModel(method, clip,
// s, opt).
func CollectModelQuantizer(method collect.Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) ModelQuantizer {
	return func(m *model.Model, hs map[string]*gptq.Hessian) (map[string]*quant.QTensor, error) {
		qs, _, err := collect.QuantizeModel(m, hs, method, clip, s, opt)
		return qs, err
	}
}
