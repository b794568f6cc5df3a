package autoquant

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
)

// PipelineOptions configures RunPipeline.
type PipelineOptions struct {
	Src  *Source
	Data *Data
	Out  string // export directory, replaced only when the gate passes (or Force)
	// Exactly one of TargetBits and MaxKL drives the planner.
	TargetBits float64
	MaxKL      float64
	Schemes    []quant.Recipe // sensitivity candidates; w16 is always a planner option
	Overrides  []plan.Rule
	Int4Method string // "gptq" (default) or "rtn"
	Calib      calib.Method
	Gate       Gate
	Batch      int
	BOS        int
	IgnoreGate bool // publish the export even when the gate fails
	// RequireConverged calibrates in rounds and fails when thresholds still move.
	RequireConverged bool
	// Target is what must load the export (default vllm): the plan offers each layer only
	// the schemes it loads, and plans its fused layers as one.
	Target string
	TRT    TRTOptions

	// Baseline is the full-precision model the export is verified against (nil: Src), for
	// a Src derived from it (rotated).
	Baseline *Source
	// GPTQ configures the GPTQ rounding (nil: BestGPTQ); Sequential is where its Hessians
	// come from (OneShot: the full-precision model).
	GPTQ       *gptq.Options
	Sequential collect.Mode

	// AWQ applies activation-aware per-input-channel scaling (ScaleSource, searched for
	// the first int4 candidate) before calibration; the verify baseline stays the
	// original model.
	AWQ bool
}

// RunReport is the closing report of Run.
type RunReport struct {
	Model       string        `json:"model"`
	Target      string        `json:"target"`
	Out         string        `json:"out"`
	Exported    bool          `json:"exported"`
	SizeBefore  int64         `json:"size_before_bytes"` // checkpoint tensors
	SizeAfter   int64         `json:"size_after_bytes"`  // exported model.safetensors
	AvgBits     float64       `json:"avg_bits"`          // planned linear layers, scales counted
	Plan        *plan.Plan    `json:"plan"`
	Verify      *VerifyReport `json:"verify"`
	FPTokensSec float64       `json:"fp_tokens_per_sec"`    // verify pass, full precision
	QTokensSec  float64       `json:"quant_tokens_per_sec"` // verify pass, export (fake-quantized)
	// Prefill latency of one 128-token sequence, median of 5: full precision vs the plan
	// on the integer reference kernels where the layer has one (KernelLayers of them).
	// FP and Kernel give the run-to-run range; Latency says how to read them ("" when the
	// comparison was made and differs beyond the spread, else why no speedup is claimed).
	FPLatencyMs     float64 `json:"fp_latency_ms"`
	KernelLatencyMs float64 `json:"kernel_latency_ms"`
	FPLatency       *Timing `json:"fp_latency,omitempty"`
	KernelLatency   *Timing `json:"kernel_latency,omitempty"`
	KernelLayers    int     `json:"kernel_layers"`
	QuantizedLayers int     `json:"quantized_layers"`
	LatencyNote     string  `json:"latency_note"`
	// The plan's predicted damage (the sum of its layers' sensitivities: mean KL per token
	// with exact sensitivity, output error with the proxy) and the KL the verify pass
	// measured on the export; with CompareProxy the proxy's rank agreement with the exact
	// sensitivity over every (layer, scheme).
	SensitivityMode string   `json:"sensitivity_mode,omitempty"`
	PredictedDamage float64  `json:"predicted_damage"`
	MeasuredKL      float64  `json:"measured_kl"`
	ProxySpearman   *float64 `json:"proxy_spearman,omitempty"`
	// Process totals of the run (the streaming pipeline): peak resident memory (getrusage)
	// and CPU seconds.
	PeakRSSBytes int64             `json:"peak_rss_bytes,omitempty"`
	CPUSeconds   float64           `json:"cpu_seconds,omitempty"`
	Stages       []Stage           `json:"stages"`
	Sensitivity  *plan.Sensitivity `json:"-"`
	Layers       map[string]string `json:"layers"` // layer -> scheme
	// GGUF is the file's storage in llama.cpp's accounting (--target gguf).
	GGUF *GGUFBits `json:"gguf,omitempty"`
}

// Stage is one step's wall time.
type Stage struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	Detail     string  `json:"detail"`
}

// RunPipeline executes the whole pipeline: calibrate, sensitivity, plan, quantize, export (to a
// staging directory), verify the export against full precision, and publish it at Out if
// the gate passes. A failing gate leaves Out untouched and returns the report with an
// error.
func RunPipeline(env Env, opt PipelineOptions) (*RunReport, error) {
	if opt.Batch <= 0 {
		opt.Batch = 8
	}
	if opt.BOS == 0 {
		opt.BOS = 1
	}
	if len(opt.Schemes) == 0 {
		opt.Schemes = defaultSchemesFor(opt.Src.Cfg, opt.Target)
	}
	isGGUF := opt.Target == GGUFTarget
	if isGGUF {
		if _, err := sourceVocab(opt.Src); err != nil {
			return nil, err
		}
	}
	if opt.Calib == 0 {
		opt.Calib = calib.MethodEntropy
	}
	serve := ServeDType(opt.Src.DType())
	et, err := openTarget(opt.Target, serve, sourceLayers(opt.Src))
	if err != nil {
		return nil, err
	}
	if et.warn == nil {
		keep, dropped := et.loadable(opt.Schemes)
		for _, d := range dropped {
			env.logf("note: %s loads no layer of this model as %s: not measured\n", et.t.Name, d)
		}
		opt.Schemes = keep
		// Out of reach before any work (overrides may fix other schemes: left to the planner).
		if min, refused := et.minBits(keep, 16); len(opt.Overrides) == 0 && opt.TargetBits > 0 && opt.TargetBits < min-1e-9 {
			err := error(&plan.BudgetError{Target: opt.TargetBits, Cheapest: min, Constrained: refused || len(dropped) > 0})
			if why := et.fullOnly(keep); why != "" {
				err = fmt.Errorf("%w;\n%s", err, why)
			}
			return nil, err
		}
	}
	orig := opt.Src
	if opt.Baseline != nil {
		orig = opt.Baseline
	}
	gopt := BestGPTQ
	if opt.GPTQ != nil {
		gopt = *opt.GPTQ
	}
	if opt.AWQ { // activation-aware scaling: everything below runs on the rescaled source
		var int4 *quant.Recipe
		for i := range opt.Schemes {
			if !opt.Schemes[i].Full && opt.Schemes[i].Weight.Bits == 4 {
				int4 = &opt.Schemes[i]
				break
			}
		}
		if int4 == nil {
			return nil, fmt.Errorf("awq: no int4 candidate scheme to search scales for")
		}
		src, _, err := ScaleSource(opt.Src, opt.Data.Calib, opt.Batch, *int4, BestGPTQ)
		if err != nil {
			return nil, err
		}
		opt.Src = src
	}
	rep := &RunReport{Model: opt.Src.displayPath(), Target: et.t.Name, Out: opt.Out, SizeBefore: orig.Bytes()}
	const nStages = 6
	stage := 0
	start := time.Now()
	done := func(name, detail string) {
		stage++
		s := Stage{Name: name, Seconds: time.Since(start).Seconds(), Detail: detail}
		rep.Stages = append(rep.Stages, s)
		env.logf("[%d/%d] %-12s %6.1fs  %s\n", stage, nStages, name, s.Seconds, detail)
		start = time.Now()
	}
	stopped := env.stopped
	m, err := opt.Src.NewModel()
	if err != nil {
		return nil, err
	}

	// 1. Calibrate: activation thresholds (static W8A8) and, for GPTQ, Hessians.
	rounds := 1
	if opt.RequireConverged {
		rounds = calibrun.DefaultRounds
	}
	amax, calTokens, diag, err := calibrun.LayerThresholdsRounds(m, opt.Data.Calib, calib.DefaultOptions(opt.Calib), opt.Batch, rounds)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	if opt.RequireConverged && !diag.Converged {
		return nil, notConverged(diag)
	}
	qz := &Quantizers{Amax: amax, ScaleDType: serve}
	detail := fmt.Sprintf("%d tokens, %s activation thresholds for %d layers", calTokens, opt.Calib, len(amax))
	askGPTQ := false
	for _, c := range opt.Schemes {
		askGPTQ = askGPTQ || c.Rounding == quant.RoundGPTQ
	}
	if opt.Int4Method != "" && opt.Int4Method != "gptq" && opt.Int4Method != "rtn" {
		return nil, fmt.Errorf("rounding method %q (want gptq or rtn)", opt.Int4Method)
	}
	if opt.Int4Method == "" || opt.Int4Method == "gptq" || askGPTQ {
		hs, err := collect.Hessians(m, opt.Data.Calib, opt.Batch, nil)
		if err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
		qz.LowBit, qz.Hessians = GPTQ(hs, gopt), hs
		detail += ", GPTQ Hessians"
	}
	done("calibrate", detail)
	if err := stopped(); err != nil {
		return nil, err
	}

	// 2. Sensitivity.
	names := m.LinearNames()
	bar := progress.New(env.bars(), "sensitivity", int64(len(names)*len(opt.Schemes)), "runs")
	sens, err := MeasureSensitivity(m, opt.Data.Sens, SensOptions{Ctx: env.Ctx, Schemes: opt.Schemes, Quantizers: qz, Batch: opt.Batch, BOS: opt.BOS,
		Progress: func(int, int) { bar.Add(1) }})
	bar.Done()
	if err != nil {
		return nil, fmt.Errorf("sensitivity: %w", err)
	}
	sens.Model, sens.DType = rep.Model, opt.Src.DType().String()
	rep.Sensitivity = sens
	done("sensitivity", fmt.Sprintf("%d layers x %d schemes on %d tokens", len(names), len(opt.Schemes), sens.Tokens))
	if err := stopped(); err != nil {
		return nil, err
	}

	// 3. Plan.
	p, res, err := solveFor(et, sens, plan.Options{TargetBits: opt.TargetBits, MaxDamage: opt.MaxKL, Overrides: opt.Overrides})
	if err != nil {
		return nil, err
	}
	if err := et.checkPlan(env, res.Choices); err != nil {
		return nil, err
	}
	p.Int4Method = opt.Int4Method
	if p.Int4Method == "" {
		p.Int4Method = "gptq"
	}
	rep.Plan, rep.AvgBits = p, res.AvgBits
	rep.PredictedDamage, rep.SensitivityMode = res.Total, SensExact
	rep.Layers = map[string]string{}
	for i, l := range res.Layers {
		rep.Layers[l.Name] = res.Choices[i].String()
	}
	done("plan", fmt.Sprintf("%.3f bits/weight on average, predicted KL %.5f", res.AvgBits, res.Total))
	if err := stopped(); err != nil {
		return nil, err
	}

	// 4. Quantize (a fresh model, so the calibration model stays full precision).
	cand, err := opt.Src.NewModel()
	if err != nil {
		return nil, err
	}
	bar = progress.New(env.bars(), "quantize", int64(len(names)), "layers")
	var layers []*Layer
	if opt.Sequential != collect.OneShot && qz.LowBit != nil {
		so := collect.Options{Mode: opt.Sequential, Batch: opt.Batch}
		layers, err = ApplyPlanSequential(cand, p, qz, gopt, opt.Data.Calib, so, func() { bar.Add(1) })
	} else {
		layers, err = ApplyPlan(cand, p, qz, func() { bar.Add(1) })
	}
	bar.Done()
	if err != nil {
		return nil, err
	}
	if err := et.checkInputScales(env, layers); err != nil {
		return nil, err
	}
	done("quantize", fmt.Sprintf("%d of %d linear layers quantized", len(layers), len(names)))
	if err := stopped(); err != nil {
		return nil, err
	}

	// 5. Export to a staging directory beside Out.
	stageRoot, err := atomicfile.MkdirTemp(opt.Out)
	if err != nil {
		return nil, err
	}
	defer atomicfile.RemoveTemp(stageRoot)
	stageDir := filepath.Join(stageRoot, "export")
	if isGGUF {
		stageDir = filepath.Join(stageRoot, "model.gguf")
		full, _ := fullType("auto", opt.Src.DType())
		if err := writeGGUF(stageDir, opt.Src, layers, full); err != nil {
			return nil, err
		}
	} else {
		em := ExportModel(opt.Src, cand, layers)
		setServeDType(em, opt.Src, serve)
		cache, err := opt.TRT.render(env, trtCacheOf(amax, opt.Calib), TRTCacheFile)
		if err != nil {
			return nil, err
		}
		em.Extra = map[string][]byte{TRTCacheFile: cache}
		if err := export.Write(stageDir, em, export.Options{ScaleDType: serve}); err != nil {
			return nil, err
		}
	}
	weights := filepath.Join(stageDir, export.WeightsFile)
	format := fmt.Sprintf("compressed-tensors for %s (%s scales)", et.t.Name, serve)
	if isGGUF {
		weights, format = stageDir, "GGUF for llama.cpp"
	}
	if st, err := os.Stat(weights); err == nil {
		rep.SizeAfter = st.Size()
	}
	done("export", fmt.Sprintf("%s, %s -> %s", format, HumanBytes(rep.SizeBefore), HumanBytes(rep.SizeAfter)))
	if err := stopped(); err != nil {
		return nil, err
	}

	// 6. Verify the export itself against full precision on held-out tokens.
	var exported *model.Model
	if isGGUF {
		var bits GGUFBits
		exported, bits, err = LoadGGUF(stageDir)
		rep.GGUF = &bits
	} else {
		exported, _, err = LoadExported(stageDir)
	}
	if err != nil {
		return nil, fmt.Errorf("verify: reading the export back: %w", err)
	}
	base, err := orig.NewModel()
	if err != nil {
		return nil, err
	}
	v, err := CompareModels(base, exported, opt.Data.Eval, opt.BOS, opt.Batch, opt.Gate)
	if err != nil {
		return nil, err
	}
	rep.Verify, rep.MeasuredKL = v, v.KL
	rep.FPTokensSec = float64(v.Tokens) / max(v.BaselineSec, 1e-9)
	rep.QTokensSec = float64(v.Tokens) / max(v.CandidateSec, 1e-9)
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL: " + fmt.Sprint(v.Failures)
	}
	done("verify", fmt.Sprintf("ppl %.4f -> %.4f (%+.3f%%), KL %.5f, top-1 %.2f%%: %s",
		v.BaselinePPL, v.CandidatePPL, 100*v.PPLIncrease, v.KL, 100*v.Top1, verdict))

	if isGGUF {
		rep.QuantizedLayers = len(layers)
		rep.LatencyNote = "not measured here: llama.cpp runs the file (autoq bench model --gguf F16.gguf,THIS.gguf)"
	} else if err := latency(rep, base, cand, layers, opt.Data.Eval); err != nil {
		return nil, err
	}

	if !v.Pass && !opt.IgnoreGate {
		return rep, fmt.Errorf("accuracy gate failed (%v): %s left unchanged", v.Failures, opt.Out)
	}
	if isGGUF { // one file: the plan and the report are in the JSON report
		if err := os.Rename(stageDir, opt.Out); err != nil {
			return nil, err
		}
		rep.Exported = true
		return rep, nil
	}
	if err := writeSidecars(stageDir, rep); err != nil {
		return nil, err
	}
	if err := publish(stageDir, opt.Out); err != nil {
		return nil, err
	}
	rep.Exported = true
	return rep, nil
}

// latency fills the report's prefill latencies (the candidate gets the integer kernels).
// A speedup is claimed only when something runs on the kernels and the two timings differ
// beyond their run-to-run spread; otherwise the note says why not.
func latency(rep *RunReport, base, cand *model.Model, layers []*Layer, wins [][]int) error {
	rep.QuantizedLayers = len(layers)
	if len(layers) == 0 {
		rep.LatencyNote = "not compared: no layer is quantized (the plan keeps every layer in full precision)"
		return nil
	}
	var err error
	if rep.KernelLayers, err = KernelModel(cand, layers); err != nil {
		return err
	}
	if rep.KernelLayers == 0 {
		rep.LatencyNote = "not compared: no quantized layer runs on an integer reference kernel (all are fake-quantized floats)"
		return nil
	}
	return timePrefill(rep, base, cand, wins[0])
}

// timePrefill times base and cand on (up to) the first 128 tokens of win and records both
// in rep, with a note when the runs overlap.
func timePrefill(rep *RunReport, base, cand *model.Model, win []int) error {
	toks := [][]int{win[:min(128, len(win))]}
	fp, err := TimeForward(base, toks, 1, 5)
	if err != nil {
		return err
	}
	q, err := TimeForward(cand, toks, 1, 5)
	if err != nil {
		return err
	}
	rep.FPLatency, rep.KernelLatency = &fp, &q
	rep.FPLatencyMs, rep.KernelLatencyMs = fp.Median, q.Median
	if !fp.Distinct(q) {
		rep.LatencyNote = fmt.Sprintf("no measurable difference: the runs overlap (%.2f-%.2f ms vs %.2f-%.2f ms)", fp.Min, fp.Max, q.Min, q.Max)
	}
	return nil
}

// writeSidecars stores the plan, the sensitivity table and the report beside the weights.
func writeSidecars(dir string, rep *RunReport) error {
	if err := plan.Write(filepath.Join(dir, "autoq_plan.json"), rep.Plan); err != nil {
		return err
	}
	if err := plan.WriteSensitivity(filepath.Join(dir, "autoq_sensitivity.json"), rep.Sensitivity); err != nil {
		return err
	}
	rep.Exported = true
	defer func() { rep.Exported = false }()
	return writeJSONFile(filepath.Join(dir, "autoq_report.json"), rep)
}

// publish moves the complete staging directory to out atomically (an existing out is
// replaced only once the new one is in place).
func publish(stageDir, out string) error {
	entries, err := os.ReadDir(stageDir)
	if err != nil {
		return err
	}
	return atomicfile.Dir(out, export.OutputKind, func(tmp string) error {
		for _, e := range entries {
			if err := os.Rename(filepath.Join(stageDir, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
				return err
			}
		}
		return nil
	})
}

// defaultSchemesFor are the candidates of `autoq run --target t` without --schemes: for
// gguf every block format it writes (those no layer can take are dropped with a note),
// else defaultSchemes.
func defaultSchemesFor(cfg checkpoint.LlamaConfig, t string) []quant.Recipe {
	if t != GGUFTarget {
		return defaultSchemes(cfg)
	}
	var out []quant.Recipe
	for _, b := range quant.Blocks() {
		out = append(out, quant.Recipe{Weight: b.Scheme(), Block: b})
	}
	return out
}

// defaultSchemes are the candidates of `autoq run` without --schemes: weight schemes only
// (int8 activations cost as many weight bits as w8 and never damage less, so under a bits
// budget the planner would not pick them), with groups that suit the model's width.
func defaultSchemes(cfg checkpoint.LlamaConfig) []quant.Recipe {
	names := []string{"w4g128", "w4g128a", "w4g64a", "w8"}
	if cfg.Dim < 1024 {
		names = []string{"w4g32", "w4g32a", "w4g16a", "w8"} // 128-wide groups would be whole rows
	}
	out := make([]quant.Recipe, len(names))
	for i, s := range names {
		out[i], _ = quant.ParseRecipe(s)
	}
	return out
}

// configLayers lists the linear layers of a Llama configuration with their shapes
// ([outputs, inputs]), without reading any weight.
func configLayers(cfg checkpoint.LlamaConfig) []plan.Layer {
	D, H, KV := cfg.Dim, cfg.HiddenDim, cfg.KVDim()
	shapes := map[string][2]int{"self_attn.q_proj": {D, D}, "self_attn.k_proj": {KV, D}, "self_attn.v_proj": {KV, D},
		"self_attn.o_proj": {D, D}, "mlp.gate_proj": {H, D}, "mlp.up_proj": {H, D}, "mlp.down_proj": {D, H}}
	var out []plan.Layer
	for l := 0; l < cfg.Layers; l++ {
		for _, s := range model.LinearSuffixes {
			sh := shapes[s]
			out = append(out, plan.Layer{Name: fmt.Sprintf("model.layers.%d.%s", l, s), Rows: sh[0], Cols: sh[1]})
		}
	}
	return out
}
