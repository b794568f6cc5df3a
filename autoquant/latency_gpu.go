package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// gpuLatencyTokens is the prefill the GPU latency report times: one window of up to this
// many tokens (the CPU reference times 128: its kernels are slow).
const gpuLatencyTokens = 2048

// timePrefillDevice is the latency report on a GPU: the model runner's prefill with every
// layer in F16 (cuBLAS) against the plan's layers on the quantized kernels (the runner
// quantizes and packs the weights itself; timing does not depend on the levels), timed
// with CUDA events, one runner at a time. ok is false when the runner cannot take the plan
// (static activation scales) or the model does not fit the device twice over weights in
// F16: the CPU reference timing applies then, and the note says why.
func timePrefillDevice(env Env, rep *RunReport, dev backend.Device, base *model.Model, layers []*Layer, win []int, modelBytes int64) (ok bool, err error) {
	plan := map[string]quant.Recipe{}
	for _, l := range layers {
		if l.Recipe.Act == quant.ActStatic {
			env.logf("note: latency on the CPU reference: the GPU model runner has no static activation scales (%s)\n", l.Name)
			return false, nil
		}
		plan[l.Name] = l.Recipe
	}
	b, err := backend.OpenDevice(dev)
	if err != nil {
		return false, err
	}
	mem := int64(b.Info().MemoryBytes)
	b.Close()
	if modelBytes > mem/10*8 {
		env.logf("note: latency on the CPU reference: the model's %s in F16 do not fit 80%% of %s's %s\n", HumanBytes(modelBytes), dev, HumanBytes(mem))
		return false, nil
	}
	toks := [][]int{win[:min(gpuLatencyTokens, len(win))]}
	timeRunner := func(opt model.RunnerOptions) (Timing, error) {
		r, err := model.OpenRunner(dev, base, opt)
		if err != nil {
			return Timing{}, err
		}
		defer r.Close()
		ms, err := r.TimePrefill(toks, 2, 7)
		if err != nil {
			return Timing{}, err
		}
		return timingOf(ms), nil
	}
	fp, err := timeRunner(model.RunnerOptions{})
	if err != nil {
		return false, fmt.Errorf("latency: full precision on %s: %w", dev, err)
	}
	q, err := timeRunner(model.RunnerOptions{Layers: plan})
	if err != nil {
		return false, fmt.Errorf("latency: quantized on %s: %w", dev, err)
	}
	rep.FPLatency, rep.KernelLatency = &fp, &q
	rep.FPLatencyMs, rep.KernelLatencyMs = fp.Median, q.Median
	rep.LatencyNote = fmt.Sprintf("%s model runner, prefill of %d tokens: F16 (cuBLAS) vs the W8A8/W4A16 kernels (CUDA events, 7 runs)", dev, len(toks[0]))
	if !fp.Distinct(q) {
		rep.LatencyNote += fmt.Sprintf("; no measurable difference: the runs overlap (%.2f-%.2f ms vs %.2f-%.2f ms)", fp.Min, fp.Max, q.Min, q.Max)
	}
	return true, nil
}
