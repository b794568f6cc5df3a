package autoquant

import (
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
)

// ApplyPlanSequential is ApplyPlan with GPTQ's sequential mode (collect.SequentialWith):
// block by block, each layer that GPTQ rounds is quantized against the Hessian of its input
// as the already-quantized layers before it (their activation quantization included)
// produce it from the calibration windows, instead of qz.LowBit's full-precision Hessians.
// With so.FPTarget every quantized layer (GPTQ or not) quantizes its drift-corrected target
// weights. It costs about two (ByBlock) or three (ByLayer) forward passes of the
// calibration data (two more with FPTarget).
func ApplyPlanSequential(m *model.Model, p *plan.Plan, qz *Quantizers, opt gptq.Options, calib [][]int, so collect.Options, progress func()) ([]*Layer, error) {
	var out []*Layer
	err := collect.SequentialWith(m, calib, so, func(name string, in collect.LayerInput) (model.Linear, error) {
		if progress != nil {
			defer progress()
		}
		c, err := p.SchemeFor(name)
		if err != nil {
			return nil, err
		}
		if c.Full {
			return m.Linear(name), nil
		}
		lq := *qz
		if qz.LowBit != nil {
			lq.LowBit = GPTQ(map[string]*gptq.Hessian{name: in.H}, opt)
		}
		l, err := lq.QuantizeWeights(m, name, c, in.Target)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		return l.Linear, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
