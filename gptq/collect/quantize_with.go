package collect

import (
	"fmt"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// GPTQFunc quantizes one layer with GPTQ: gptq.Quantize on the CPU, or a device
// implementation (backend.GPTQRunner) with the same signature.
type GPTQFunc func(name string, w []float32, rows, cols int, s quant.Scheme, h *gptq.Hessian, opt gptq.Options) (*quant.QTensor, gptq.Report, error)

// QuantizeModelGPTQWith is QuantizeModel for method GPTQ with the per-layer GPTQ done by
// run (e.g. on a GPU). Clip is taken from opt.Clip; group sizes are fitted with Scheme.FitCols.
func QuantizeModelGPTQWith(m *model.Model, hs map[string]*gptq.Hessian, s quant.Scheme, opt gptq.Options, run GPTQFunc) (map[string]*quant.QTensor, []gptq.Report, error) {
	out := make(map[string]*quant.QTensor)
	var reps []gptq.Report
	for _, name := range m.LinearNames() {
		wt := m.Weight(name + ".weight")
		if wt == nil || len(wt.Shape) != 2 {
			return nil, nil, fmt.Errorf("quantize: no 2-D weight %s.weight", name)
		}
		h := hs[name]
		if h == nil {
			return nil, nil, fmt.Errorf("gptq: no Hessian for layer %s", name)
		}
		rows, cols := wt.Shape[0], wt.Shape[1]
		q, rep, err := run(name, wt.ToF32(), rows, cols, s.FitCols(cols), h, opt)
		if err != nil {
			return nil, nil, err
		}
		reps = append(reps, rep)
		out[name] = q
	}
	return out, reps, nil
}
