package main

import (
	"encoding/json"
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// runEvalGPU is `autoq eval --device cuda`: the reference runs in F16 (cuBLAS) on the GPU
// and each scheme on the quantized kernels (dequantized F16 where a layer's shape does not
// fit them), all through eval.Compare with the same windowing as on the CPU.
func runEvalGPU(e *env, f *evalFlags, specs []eval.Spec, search quant.SearchOptions) error {
	if f.quantized != "" || f.calibTable != "" {
		return usagef("--device %s runs --scheme variants only (not --quantized or --calib)", f.device)
	}
	for _, sp := range specs {
		if sp.Act == model.ActStatic {
			return usagef("--device %s: scheme %s uses static activation scales, which the GPU runner does not support (use per-token w8a8)", f.device, sp.Name)
		}
	}
	m, tok, err := loadModelAndTokenizer(f.model, f.tokenizer, f.data)
	if err != nil {
		return err
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	ref, err := model.OpenRunner(f.device, m, model.RunnerOptions{})
	if err != nil {
		return err
	}
	defer ref.Close()
	var cands []eval.Forwarder
	var labels []string
	for _, sp := range specs {
		layers := map[string]model.LayerScheme{}
		for _, n := range m.LinearNames() {
			layers[n] = model.LayerScheme{Weight: sp.Weight, Act: sp.Act}
		}
		r, err := model.OpenRunner(f.device, m, model.RunnerOptions{Layers: layers, Search: search})
		if err != nil {
			return fmt.Errorf("scheme %s: %w", sp.Name, err)
		}
		defer r.Close()
		cands, labels = append(cands, r), append(labels, sp.Name)
	}
	w, err := eval.OpenWindows(f.data, tok, m.Config.Vocab, eval.DataOptions{SeqLen: f.seqLen, MaxTokens: f.tokens, Split: f.split, SkipTokens: f.skip})
	if err != nil {
		return err
	}
	defer w.Close()
	bar := progress.New(e.stderr, "eval", int64(f.tokens), "tok")
	fp, rs, err := eval.Compare(ref, cands, w, eval.Options{Vocab: m.Config.Vocab, BOS: bos, Batch: f.batch, Progress: func(n int) { bar.Add(int64(n)) }})
	bar.Done()
	if err != nil {
		return err
	}
	rep := evalReport{Model: f.model, Data: f.data, Split: f.split, SeqLen: f.seqLen, Windowing: windowingDoc, Search: f.search}
	rep.Results = append(rep.Results, evalRow{Scheme: "fp16", Result: fp})
	for i, r := range rs {
		rep.Results = append(rep.Results, evalRow{Scheme: labels[i], Result: r, PPLIncrease: 100 * (r.Perplexity/fp.Perplexity - 1)})
	}
	if f.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEvalTable(e.stdout, rep)
	return nil
}

// resolveDevice turns --device auto into cuda when a CUDA device is present and into cpu
// otherwise (saying why on stderr); other values pass through.
func resolveDevice(e *env, cmd, device string) string {
	if device != "auto" {
		return device
	}
	n, err := backend.CUDADevices()
	if err == nil && n > 0 {
		return "cuda"
	}
	if err == nil {
		err = fmt.Errorf("no CUDA device")
	}
	fmt.Fprintf(e.stderr, "autoq %s: running on the CPU (%v)\n", cmd, err)
	return "cpu"
}
