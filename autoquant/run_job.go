package autoquant

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/synth"
	"github.com/autoq/autoq/tensor"
)

// RunOptions configures Run (`autoq run`).
type RunOptions struct {
	Input
	TRTOptions
	Target string // export target: vllm (default), transformers, tensorrt or any
	// Exactly one of TargetBits and KLBudget drives the planner.
	TargetBits float64
	KLBudget   float64
	Schemes    string   // candidate schemes, comma-separated ("" = defaults by model width)
	Overrides  []string // GLOB=SCHEME
	// The accuracy gate.
	MaxPPLIncrease string // "1%", 0.01 or "off"
	GateKL         float64
	Out            string
	Force          bool // replace a previous autoq export at Out
	IgnoreGate     bool // publish even when the gate fails (still an error)
	// RequireConverged makes calibration measure convergence over rounds and fail when
	// tensors are still unsettled.
	RequireConverged bool
	// The streaming pipeline (RunStreaming): its work directory ("" : beside --out),
	// --resume, --keep-work, the device memory budget ("auto" or a size: 16GB, 512MiB) and
	// the sensitivity mode (exact, proxy, or both: exact for the plan, the proxy compared
	// with it).
	WorkDir      string
	Resume       bool
	KeepWork     bool
	MaxDeviceMem string
	Sensitivity  string
	// Rotate rotates the model before calibration (the gate compares with the original);
	// Sequential (off, block, layer) and ActOrderGroups configure GPTQ (see
	// QuantizeOptions). Rotations, dynamic act-order groups, --sequential layer and the
	// gguf target run the in-memory pipeline (RunPipeline); everything else streams.
	Rotate         Rotation
	Sequential     string
	ActOrderGroups string
}

// Run is `autoq run`: the whole pipeline on a model and data (or the built-in synthetic
// model): calibrate, sensitivity, plan, quantize, export, verify. A refused candidate
// comes back with its report and a *GateError (or the pipeline's error when --out was left
// unchanged).
func Run(env Env, f RunOptions) (*RunReport, error) {
	switch {
	case f.TargetBits < 0:
		return nil, usagef("--target-bits must be positive, got %g", f.TargetBits)
	case f.KLBudget < 0:
		return nil, usagef("--kl-budget must be positive, got %g", f.KLBudget)
	case (f.TargetBits > 0) == (f.KLBudget > 0):
		return nil, usagef("give exactly one of --target-bits and --kl-budget")
	}
	maxPPL, err := ParsePercent(f.MaxPPLIncrease)
	if err != nil {
		return nil, usagef("--max-ppl-increase: %v", err)
	}
	var schemes []quant.Recipe
	if f.Schemes != "" {
		if schemes, err = ParseRecipes(f.Schemes); err != nil {
			return nil, usagef("--schemes: %v", err)
		}
	}
	rules, err := parseOverrides(f.Overrides)
	if err != nil {
		return nil, err
	}
	if err := f.checkTRT(); err != nil {
		return nil, err
	}
	meth, err := calib.ParseMethod(f.CalibMethod)
	if err != nil {
		return nil, usagef("--calib-method: %v", err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := f.Rotate.check(); err != nil {
		return nil, err
	}
	so, err := f.streamOptions()
	if err != nil {
		return nil, err
	}
	mode, err := parseSequential(f.Sequential)
	if err != nil {
		return nil, err
	}
	gopt := BestGPTQ
	if f.ActOrderGroups != "" {
		if gopt.Groups, err = gptq.ParseGroupOrder(f.ActOrderGroups); err != nil {
			return nil, usagef("--act-order-groups: %v", err)
		}
	}
	out := outDir("--out", f.Out, export.OutputKind)
	if f.Target == GGUFTarget {
		out = outFile("--out", f.Out)
	}
	if err := checkOutputs(env, f.Force, []string{f.Model, f.Data, f.Tokenizer, f.CalibTable}, out); err != nil {
		return nil, err
	}
	inMemory := f.inMemory(mode, gopt)
	if inMemory != "" && f.streaming() {
		return nil, usagef("%s runs the in-memory pipeline: --work-dir, --resume, --keep-work, --max-device-mem and --sensitivity proxy|both belong to the streaming one", inMemory)
	}
	so.Sequential = mode == collect.ByBlock
	if err := f.checkBudget(schemes, rules); err != nil {
		return nil, err
	}
	dev, err := openDevice(env, "run", f.Device)
	if err != nil {
		return nil, err
	}
	so.Device = dev
	src, d, err := f.open(true, dataNeed{sens: true, eval: true})
	if err != nil {
		return nil, err
	}
	if src.Path == "" {
		env.logf("no --model: using the built-in synthetic Llama (%d layers, dim %d, vocab %d) and synthetic data\n",
			src.Cfg.Layers, src.Cfg.Dim, src.Cfg.Vocab)
	}
	defer src.Close()
	base := src
	if src, err = f.Rotate.rotateSource(src); err != nil {
		return nil, err
	}
	if f.Rotate.On() {
		env.logf("rotated: %s; the gate compares the export with the original model\n", f.Rotate)
	}
	popt := PipelineOptions{Src: src, Baseline: base, GPTQ: &gopt, Sequential: mode, Data: d, Out: f.Out, TargetBits: f.TargetBits, MaxKL: f.KLBudget,
		Schemes: schemes, Overrides: rules, Int4Method: f.Int4, Calib: meth, Batch: f.Batch, BOS: f.bos(src),
		Gate: Gate{MaxPPLIncrease: maxPPL, MaxKL: f.GateKL}, IgnoreGate: f.IgnoreGate, RequireConverged: f.RequireConverged, Target: f.Target, TRT: f.TRTOptions}
	var rep *RunReport
	var runErr error
	if inMemory != "" {
		env.logf("%s: the in-memory pipeline (the whole model in memory)\n", inMemory)
		if dev.CUDA {
			env.logf("note: the in-memory pipeline computes on the CPU reference in this version (the streaming one runs its forward passes on %s)\n", dev)
		}
		rep, runErr = RunPipeline(env, popt)
	} else {
		rep, runErr = RunStreaming(env, popt, so)
	}
	if rep == nil || runErr != nil {
		return rep, runErr
	}
	if !rep.Verify.Pass {
		return rep, &GateError{rep.Verify.Failures}
	}
	return rep, nil
}

// streamOptions checks the streaming pipeline's flags.
func (f *RunOptions) streamOptions() (StreamOptions, error) {
	so := StreamOptions{WorkDir: f.WorkDir, Resume: f.Resume, Force: f.Force, KeepWork: f.KeepWork}
	switch f.Sensitivity {
	case "", SensExact:
		so.Sensitivity = SensExact
	case SensProxy:
		so.Sensitivity = SensProxy
	case "both":
		so.Sensitivity, so.CompareProxy = SensExact, true
	default:
		return so, usagef("--sensitivity must be exact, proxy or both, not %q", f.Sensitivity)
	}
	if so.Sensitivity == SensProxy && f.KLBudget > 0 {
		return so, usagef("--sensitivity proxy ranks layers by their output error, which is not in KL units: plan with --target-bits, or use --sensitivity exact with --kl-budget")
	}
	if f.MaxDeviceMem != "" && f.MaxDeviceMem != "auto" {
		n, err := synth.ParseSize(f.MaxDeviceMem)
		if err != nil || n <= 0 {
			return so, usagef("--max-device-mem %q: want auto or a size such as 16GB or 512MiB", f.MaxDeviceMem)
		}
		so.MaxDeviceMem = n
	}
	return so, nil
}

// inMemory names the option that needs the in-memory pipeline, "" when the run streams.
func (f *RunOptions) inMemory(mode collect.Mode, gopt gptq.Options) string {
	switch {
	case f.Rotate.On():
		return "--rotate"
	case gopt.Groups != BestGPTQ.Groups:
		return "--act-order-groups " + f.ActOrderGroups
	case mode != collect.OneShot && mode != collect.ByBlock:
		return "--sequential " + f.Sequential
	case f.Target == GGUFTarget:
		return "--target gguf"
	}
	return ""
}

// streaming reports whether an option of the streaming pipeline was given.
func (f *RunOptions) streaming() bool {
	return f.WorkDir != "" || f.Resume || f.KeepWork || (f.MaxDeviceMem != "" && f.MaxDeviceMem != "auto") ||
		(f.Sensitivity != "" && f.Sensitivity != SensExact)
}

// WriteTable prints the closing report.
func (r *RunReport) WriteTable(w io.Writer) {
	v := r.Verify
	fmt.Fprintf(w, "\nAutoQuant report for %s\n", r.Model)
	counts := map[string]int{}
	for _, s := range r.Layers {
		counts[s]++
	}
	var parts []string
	for s, n := range counts {
		parts = append(parts, fmt.Sprintf("%s x%d", s, n))
	}
	sort.Strings(parts)
	fmt.Fprintf(w, "  plan          %.3f bits/weight on average (%s)\n", r.AvgBits, strings.Join(parts, ", "))
	switch r.SensitivityMode {
	case SensExact:
		fmt.Fprintf(w, "  damage        predicted KL %.5f (the plan's layers summed), measured %.5f\n", r.PredictedDamage, r.MeasuredKL)
	case SensProxy:
		fmt.Fprintf(w, "  damage        predicted %.4g (proxy: relative error at the block outputs, not KL), measured KL %.5f\n", r.PredictedDamage, r.Verify.KL)
	}
	fmt.Fprintf(w, "  size          %s -> %s (%.2fx smaller)\n", HumanBytes(r.SizeBefore), HumanBytes(r.SizeAfter), float64(r.SizeBefore)/float64(max(r.SizeAfter, 1)))
	fmt.Fprintf(w, "  perplexity    %.4f -> %.4f (%+.3f%%) on %d held-out tokens\n", v.BaselinePPL, v.CandidatePPL, 100*v.PPLIncrease, v.Tokens)
	fmt.Fprintf(w, "  KL, top-1     %.6f nats/token, %.2f%% agreement\n", v.KL, 100*v.Top1)
	switch {
	case r.FPLatency == nil:
		fmt.Fprintf(w, "  latency       %s\n", r.LatencyNote)
	case r.LatencyNote != "":
		fmt.Fprintf(w, "  latency       prefill of 128 tokens (CPU, median of 5): full precision %.2f ms, quantized %.2f ms:\n"+
			"                %s; %d of %d linear layers on the integer reference kernels\n",
			r.FPLatencyMs, r.KernelLatencyMs, r.LatencyNote, r.KernelLayers, len(r.Layers))
	default:
		fmt.Fprintf(w, "  latency       prefill of 128 tokens (CPU, median of 5): full precision %.2f ms, quantized %.2f ms (%.2fx;\n"+
			"                %d of %d linear layers on the integer reference kernels, the rest fake-quantized)\n",
			r.FPLatencyMs, r.KernelLatencyMs, r.FPLatencyMs/max(r.KernelLatencyMs, 1e-9), r.KernelLayers, len(r.Layers))
	}
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL (" + strings.Join(v.Failures, "; ") + ")"
	}
	fmt.Fprintf(w, "  gate          %s\n", verdict)
	switch {
	case r.Exported && r.GGUF != nil:
		fmt.Fprintf(w, "  export        %s (GGUF for llama.cpp: %s; llama.cpp's accounting %.3f bits/weight over the linear layers,\n"+
			"                %.3f over every tensor)\n", r.Out, typeCounts(r.GGUF.Types), r.GGUF.Linear, r.GGUF.All)
	case r.Exported:
		fmt.Fprintf(w, "  export        %s (compressed-tensors for %s; plan, sensitivity and report inside)\n", r.Out, r.Target)
	default:
		fmt.Fprintf(w, "  export        not published: %s left unchanged\n", r.Out)
	}
}

// checkBudget refuses a --target-bits no plan can meet, before any model or data is
// loaded: the bounds come from the configuration's shapes and the candidates.
func (f *RunOptions) checkBudget(schemes []quant.Recipe, rules []plan.Rule) error {
	if f.TargetBits <= 0 {
		return nil
	}
	cfg := SyntheticConfig
	if f.Model != "" {
		o, err := checkpoint.OpenAny(f.Model)
		if err != nil {
			return err
		}
		c, cerr := o.Config, o.ConfigErr
		o.Close()
		if cerr != nil || c == nil {
			return fmt.Errorf("%s: %w", f.Model, errors.Join(cerr, errNoConfig(c)))
		}
		cfg = *c
	}
	if len(schemes) == 0 {
		schemes = defaultSchemesFor(cfg, f.Target)
	}
	layers := configLayers(cfg)
	lo, hi, err := plan.Bounds(layers, schemes, rules, 16)
	if err != nil {
		return usagef("%v", err)
	}
	// What the export target can load bounds the plan too (no overrides: they may fix
	// layers the target would refuse, which the planner reports).
	et, err := openTarget(f.Target, ServeDType(configDType(cfg)), layers)
	if err != nil {
		return err
	}
	why, by := "", "these candidates allow"
	if et.warn == nil && len(rules) == 0 {
		keep, _ := et.loadable(schemes)
		if min, _ := et.minBits(keep, 16); min > lo {
			lo, by, why = min, et.t.Name+" can load with these candidates", et.fullOnly(keep)
		}
	}
	switch {
	case f.TargetBits < lo-1e-9:
		msg := fmt.Sprintf("--target-bits %g is below the cheapest plan %s (%.3f bits/weight): give a value from %.3f to %.3f, or cheaper --schemes", f.TargetBits, by, lo, lo, hi)
		if why != "" {
			msg += ";\n" + why
		}
		return usagef("%s", msg)
	case f.TargetBits > hi+1e-9:
		return usagef("--target-bits %g is above the most expensive plan (%.3f bits/weight: every layer in full precision), so nothing would be quantized: give a value from %.3f to %.3f", f.TargetBits, hi, lo, hi)
	}
	return nil
}

func errNoConfig(c *checkpoint.LlamaConfig) error {
	if c == nil {
		return fmt.Errorf("no config.json: the layer shapes are unknown")
	}
	return nil
}

// configDType is the dtype a configuration says its weights are stored in.
func configDType(cfg checkpoint.LlamaConfig) tensor.DType {
	for d, s := range torchDTypes {
		if s == cfg.TorchDType {
			return d
		}
	}
	return tensor.F32
}
