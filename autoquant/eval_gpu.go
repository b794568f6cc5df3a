package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// evalGPU is `autoq eval --device cuda`: the reference runs in F16 (cuBLAS) on the GPU
// and each scheme on the quantized kernels (dequantized F16 where a layer's shape does not
// fit them), all through eval.Compare with the same windowing as on the CPU.
func evalGPU(env Env, f *EvalOptions, dev backend.Device, specs []eval.Spec, search quant.SearchOptions) (*EvalReport, error) {
	if err := checkGPUEval(f, specs); err != nil {
		return nil, err
	}
	m, tok, err := loadModelAndTokenizer(f.Model, f.Tokenizer, f.Data, Rotation{})
	if err != nil {
		return nil, err
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	ref, err := model.OpenRunner(dev, m, model.RunnerOptions{})
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	var cands []eval.Forwarder
	var labels []string
	for _, sp := range specs {
		layers := map[string]quant.Recipe{}
		for _, n := range m.LinearNames() {
			layers[n] = sp.Recipe
		}
		r, err := model.OpenRunner(dev, m, model.RunnerOptions{Layers: layers, Search: search})
		if err != nil {
			return nil, fmt.Errorf("scheme %s: %w", sp.Name, err)
		}
		defer r.Close()
		cands, labels = append(cands, r), append(labels, sp.Name)
	}
	w, err := eval.OpenWindows(f.Data, tok, m.Config.Vocab, eval.DataOptions{SeqLen: f.SeqLen, MaxTokens: f.Tokens, Split: f.Split, SkipTokens: f.Skip})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	bar := progress.New(env.bars(), "eval", int64(f.Tokens), "tok")
	fp, rs, err := eval.Compare(ref, cands, w, eval.Options{Ctx: env.Ctx, Vocab: m.Config.Vocab, BOS: bos, Batch: f.Batch, Progress: func(n int) { bar.Add(int64(n)) }})
	bar.Done()
	if err != nil {
		return nil, err
	}
	rep := &EvalReport{Model: f.Model, Data: f.Data, Split: f.Split, SeqLen: f.SeqLen, Windowing: windowingDoc, Search: f.Search}
	rep.Results = append(rep.Results, EvalRow{Scheme: "fp16", Result: fp})
	for i, r := range rs {
		rep.Results = append(rep.Results, EvalRow{Scheme: labels[i], Result: r, PPLIncrease: 100 * (r.Perplexity/fp.Perplexity - 1)})
	}
	return rep, nil
}

// checkGPUEval refuses what the GPU model runner cannot evaluate (before any device is
// opened).
// evalDevice is the device an eval runs on: --device auto stays on the CPU when the work
// is what only the CPU evaluates (GPTQ, static scales, --quantized, --calib, --gguf,
// --rotate) rather than failing on a GPU machine; any other choice is kept.
func evalDevice(f *EvalOptions, specs []eval.Spec) string {
	if f.Device != "" && f.Device != "auto" {
		return f.Device
	}
	probe := *f
	probe.Device = "cuda"
	if checkGPUEval(&probe, specs) != nil {
		return "cpu"
	}
	return f.Device
}

func checkGPUEval(f *EvalOptions, specs []eval.Spec) error {
	if f.Quantized != "" || f.CalibTable != "" || len(f.GGUF) > 0 || f.Rotate.On() {
		return usagef("--device %s runs --scheme variants only (not --quantized, --calib, --gguf or --rotate: those run on the CPU, --device cpu)", f.Device)
	}
	for _, sp := range specs {
		if sp.Rounding == quant.RoundGPTQ {
			return usagef("--device %s: scheme %s rounds with GPTQ, which eval runs on the CPU (--device cpu)", f.Device, sp.Name)
		}
		if sp.Act == quant.ActStatic {
			return usagef("--device %s: scheme %s uses static activation scales, which the GPU runner does not support (use per-token w8a8)", f.Device, sp.Name)
		}
	}
	return nil
}
