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
// Layers rounded otherwise (RTN, 8-bit weights) come out as ApplyPlan makes them. It costs
// about two (mode ByBlock) or three (ByLayer) forward passes of the calibration data.
func ApplyPlanSequential(m *model.Model, p *plan.Plan, qz *Quantizers, opt gptq.Options, calib [][]int, batch int, mode collect.Mode, progress func()) ([]*Layer, error) {
	var out []*Layer
	err := collect.SequentialWith(m, calib, batch, mode, func(name string, h *gptq.Hessian) (model.Linear, error) {
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
			lq.LowBit = GPTQ(map[string]*gptq.Hessian{name: h}, opt)
		}
		l, err := lq.Quantize(m, name, c)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		return l.Linear, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}
