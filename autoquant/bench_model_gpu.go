package autoquant

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/autoq/autoq/backend"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// llama7BTwoLayers is the default GPU benchmark model: Llama-2-7B's shapes (dim 4096, MLP
// 11008, 32 heads, vocab 32000) with 2 layers, weights generated on the device, so the
// linear layers dominate as they do in the real model.
var llama7BTwoLayers = checkpoint.LlamaConfig{Dim: 4096, HiddenDim: 11008, Layers: 2, Heads: 32, KVHeads: 32, Vocab: 32000,
	MaxSeq: 4096, RopeTheta: 10000, NormEps: 1e-5, Architecture: "LlamaForCausalLM"}

// benchModelGPU times whole prefills on a GPU: F16 (cuBLAS) first, then each scheme on
// the quantized kernels (layers the kernels cannot take fall back to dequantized F16, which
// the report's kernel_paths shows). Device time from CUDA events, median of --runs.
func benchModelGPU(env Env, f *BenchModelOptions, dev backend.Device) (*BenchModelReport, error) {
	sw, err := f.sweep()
	if err != nil {
		return nil, err
	}
	labels := []string{"fp16"}
	schemes := []*quant.Recipe{nil}
	for _, sp := range sw.specs {
		labels, schemes = append(labels, sp.Name), append(schemes, &sp.Recipe)
	}
	var m *model.Model
	cfg := llama7BTwoLayers
	name := "synthetic Llama-7B shapes, 2 layers"
	if f.Model != "" {
		if m, err = model.Load(f.Model); err != nil {
			return nil, err
		}
		cfg, name = m.Config, f.Model
	}
	if err := sw.fits(cfg.MaxSeq); err != nil {
		return nil, err
	}
	open := func(s *quant.Recipe) (model.Runner, error) {
		if m == nil {
			return model.OpenSyntheticRunner(dev, cfg, s, 1)
		}
		opt := model.RunnerOptions{Search: quant.SearchOptions{Method: sw.search}}
		if s != nil {
			opt.Layers = map[string]quant.Recipe{}
			for _, n := range m.LinearNames() {
				opt.Layers[n] = *s
			}
		}
		return model.OpenRunner(dev, m, opt)
	}
	rep := &BenchModelReport{Model: name, Kernel: "gpu", Runs: f.Runs, Baseline: "fp16", Paths: map[string]string{}}
	for _, b := range sw.batches {
		for _, s := range sw.seqs {
			rep.Points = append(rep.Points, BenchPoint{Batch: b, Seq: s})
		}
	}
	bar := progress.New(env.bars(), "bench model", int64(len(rep.Points)*len(schemes)), "points")
	for vi, s := range schemes {
		r, err := open(s)
		if err != nil {
			return nil, fmt.Errorf("bench model %s: %w", labels[vi], err)
		}
		rep.Device = r.Info().Name
		rep.Paths[labels[vi]] = pathSummary(r.Kernels())
		for pi := range rep.Points {
			pt := &rep.Points[pi]
			ts, err := r.TimePrefill(benchTokens(pt.Batch, pt.Seq, cfg.Vocab), f.Warmup, f.Runs)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("bench model %s batch %d seq %d: %w", labels[vi], pt.Batch, pt.Seq, err)
			}
			pt.Variants = append(pt.Variants, pt.newVariant(labels[vi], timingOf(ts), pt.Batch*pt.Seq))
			bar.Add(1)
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
	}
	bar.Done()
	if f.Plot != "" {
		if err := plotBenchModel(rep, f.Plot); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// pathSummary counts the layers per kernel path ("w8a8 x14; fallback-f16 (...) x7").
func pathSummary(k map[string]string) string {
	counts := map[string]int{}
	for _, v := range k {
		counts[v]++
	}
	parts := make([]string, 0, len(counts))
	for _, v := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s x%d", v, counts[v]))
	}
	return strings.Join(parts, "; ")
}
