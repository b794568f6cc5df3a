//go:build cuda

package gpurunner

// One linear layer's device weights: quantized and packed once when the runner is built.

import (
	"fmt"

	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// prepareLinear quantizes and uploads one layer (sch nil: full precision).
func (r *ModelRunner) prepareLinear(name string, w []float32, N, K int, bias []float32, sch *quant.Recipe, opt model.RunnerOptions) (*devLinear, error) {
	l := &devLinear{name: name, N: N, K: K, kind: kindF16, label: "cublas-f16"}
	var err error
	if bias != nil {
		if l.bias, err = r.uploadBytes(name+".bias", cgo.AsBytes(bias)); err != nil {
			return nil, err
		}
	}
	if sch == nil {
		l.w16, err = r.uploadF16(name+".weight", w)
		return l, err
	}
	if sch.Act == quant.ActStatic {
		return nil, fmt.Errorf("cuda model: %s: static activation quantization is not supported by the GPU runner (use per-token w8a8)", name)
	}
	reason := kernelReason(name, N, K, sch, opt.NoKernels)
	if reason == "" {
		q, err := quant.Quantize(name, w, N, K, sch.Weight, opt.Search)
		if err != nil {
			return nil, fmt.Errorf("cuda model: %w", err)
		}
		if sch.Act == quant.ActDynamic {
			lv, sc, err := layout.W8A8Weights(q)
			if err != nil {
				return nil, fmt.Errorf("cuda model: %w", err)
			}
			if l.w8, err = r.uploadBytes(name+" int8 levels", cgo.AsBytes(lv)); err != nil {
				return nil, err
			}
			if l.w8s, err = r.uploadBytes(name+" scales", cgo.AsBytes(sc)); err != nil {
				return nil, err
			}
			l.kind, l.label = kindW8A8, "w8a8"
			return l, nil
		}
		p, perr := layout.PackW4A16Tiled(q)
		if perr == nil {
			if l.w4, err = r.uploadBytes(name+" packed int4", p.Data); err != nil {
				return nil, err
			}
			if l.w4s, err = r.uploadBytes(name+" scales", cgo.AsBytes(p.Scales)); err != nil {
				return nil, err
			}
			if p.Asym {
				if l.w4z, err = r.uploadBytes(name+" zeros", cgo.AsBytes(p.Zeros)); err != nil {
					return nil, err
				}
			}
			l.kind, l.group, l.label = kindW4A16, p.Group, fmt.Sprintf("w4a16-g%d", p.Group)
			return l, nil
		}
		reason = perr.Error()
	}
	deq, err := dequantizedWeight(name, w, N, K, sch.Weight, opt.Search)
	if err != nil {
		return nil, err
	}
	if l.w16, err = r.uploadF16(name+" dequantized weight", deq); err != nil {
		return nil, err
	}
	l.fakeAct = sch.Act == quant.ActDynamic
	l.label = "fallback-f16 (" + reason + ")"
	return l, nil
}

// dequantizedWeight is eval.FakeQuantizeWeight: the scheme fitted to K with
// quant.FitCols, quantized and dequantized.
func dequantizedWeight(name string, w []float32, N, K int, s quant.Scheme, opt quant.SearchOptions) ([]float32, error) {
	q, err := quant.Quantize(name, w, N, K, s.FitCols(K), opt)
	if err != nil {
		return nil, fmt.Errorf("cuda model: %w", err)
	}
	return quant.Dequantize(q), nil
}
