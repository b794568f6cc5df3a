package collect

import (
	"fmt"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// Method is how values are rounded.
type Method uint8

const (
	RTN  Method = iota + 1 // round to nearest with the chosen ranges
	GPTQ                   // GPTQ error compensation
)

var methodNames = []string{RTN: "rtn", GPTQ: "gptq"}

// ParseMethod accepts "rtn" and "gptq".
func ParseMethod(s string) (Method, error) {
	return quant.ParseEnum[Method](s, methodNames, "quantization method", "rtn or gptq")
}

func (m Method) String() string { return quant.EnumName("Method", m, methodNames) }

// QuantizeModel quantizes every linear layer of m (its checkpoint weights) with method and
// the clipping search clip, the scheme s.FitCols(cols), and the layers' Hessians (needed
// for GPTQ and act-mse; hs may be nil otherwise). It returns the quantized tensors by
// layer name and, for GPTQ, one report per layer in LinearNames order.
func QuantizeModel(m *model.Model, hs map[string]*gptq.Hessian, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) (map[string]*quant.QTensor, []gptq.Report, error) {
	out := make(map[string]*quant.QTensor)
	var reps []gptq.Report
	for _, name := range m.LinearNames() {
		var h *gptq.Hessian
		if hs != nil {
			h = hs[name]
		}
		q, rep, err := quantizeLayer(m, name, h, method, clip, s, opt)
		if err != nil {
			return nil, nil, err
		}
		if method == GPTQ {
			reps = append(reps, rep)
		}
		out[name] = q
	}
	return out, reps, nil
}

// Plug replaces m's linear layers by fake-quantized ones (weight-only) built from qs.
func Plug(m *model.Model, qs map[string]*quant.QTensor) error {
	for _, name := range m.LinearNames() {
		q := qs[name]
		if q == nil {
			continue
		}
		fq, err := fakeQuant(m, name, q)
		if err != nil {
			return err
		}
		if err := m.SetLinear(name, fq); err != nil {
			return err
		}
	}
	return nil
}

// fakeQuant is layer name as the weight-only fake-quantized q (with the layer's bias).
func fakeQuant(m *model.Model, name string, q *quant.QTensor) (*model.FakeQuant, error) {
	var bias []float32
	if b := m.Weight(name + ".bias"); b != nil {
		bias = b.F32()
	}
	return model.NewFakeQuant(q, bias, quant.ActNone, 0)
}

// quantizeLayer quantizes the checkpoint weight of one linear layer.
func quantizeLayer(m *model.Model, name string, h *gptq.Hessian, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) (*quant.QTensor, gptq.Report, error) {
	return quantizeWeights(m, name, nil, h, method, clip, s, opt)
}

// quantizeWeights quantizes w (nil: the checkpoint weight) in the shape of layer name.
func quantizeWeights(m *model.Model, name string, w []float32, h *gptq.Hessian, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) (*quant.QTensor, gptq.Report, error) {
	wt := m.Weight(name + ".weight")
	if wt == nil || len(wt.Shape) != 2 {
		return nil, gptq.Report{}, fmt.Errorf("quantize: no 2-D weight %s.weight", name)
	}
	rows, cols := wt.Shape[0], wt.Shape[1]
	if w == nil {
		w = wt.ToF32()
	}
	q, rep, err := QuantizeMatrix(name, w, rows, cols, h, method, clip, s, opt)
	if err != nil {
		return nil, rep, fmt.Errorf("quantize: %w", err)
	}
	return q, rep, nil
}

// QuantizeMatrix quantizes the [rows, cols] weight w of layer name as QuantizeModel does:
// with method and the clipping search clip, the scheme s.FitCols(cols) and the layer's
// Hessian h. The report is GPTQ's (zero for RTN).
func QuantizeMatrix(name string, w []float32, rows, cols int, h *gptq.Hessian, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) (*quant.QTensor, gptq.Report, error) {
	ls := s.FitCols(cols)
	switch method {
	case RTN:
		q, err := gptq.RTN(name, w, rows, cols, ls, h, clip)
		return q, gptq.Report{}, err
	case GPTQ:
		o := opt
		o.Clip = clip
		return gptq.Quantize(name, w, rows, cols, ls, h, o)
	}
	return nil, gptq.Report{}, fmt.Errorf("%s: unknown method %v", name, method)
}
