package autoquant

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/tensor"
)

// Sensitivity modes of the streaming pipeline.
const (
	SensExact = "exact" // damage measured to the logits from each block's cached input
	SensProxy = "proxy" // each layer's output error under its input Hessian
)

// StreamOptions are the options of RunStreaming beyond PipelineOptions.
type StreamOptions struct {
	WorkDir  string // "" : beside Out (defaultWorkDir)
	Resume   bool   // continue the run whose work directory is WorkDir
	Force    bool   // start an existing work directory over
	KeepWork bool   // keep the work directory after publishing
	// MaxDeviceMem bounds what the computing device holds (0: auto; see memPlan).
	MaxDeviceMem int64
	Sensitivity  string // SensExact (default) or SensProxy
	CompareProxy bool   // with exact: also compute the proxy and report its rank agreement
	// Sequential quantizes each block against the inputs the already-quantized blocks
	// produce (GPTQ's sequential option); off: the full-precision model's inputs.
	Sequential bool
	// Device computes the forward passes (calibration, sensitivity, verify) block by block
	// through its model.BlockRunner; the zero Device is the CPU reference. GPTQ, the
	// statistics of the calibration and the export run on the CPU.
	Device backend.Device

	runner func(m *model.Model) model.BlockRunner // tests: the block runner instead of Device's
}

// pipeline is one streaming run's state.
type pipeline struct {
	env      Env
	opt      PipelineOptions
	so       StreamOptions
	src      *Source
	et       *exportTarget
	serve    tensor.DType
	m        *model.Model // full precision, blocks read on demand
	baseline *model.Model
	ex       *blockExec
	work     *workDir
	mem      memPlan
	names    []string
	rep      *RunReport
	bar      *progress.Bar
	ref      *refLogits
	sensSec  float64 // time spent measuring sensitivity inside the calibration pass

	amax      map[string]float32
	calTokens int
	sens      *plan.Sensitivity
	proxy     *plan.Sensitivity
	plan      *plan.Plan
	layers    []*Layer
	resumed   int
}

// RunStreaming is RunPipeline for models of any size: every stage works one decoder block
// at a time from the mapped checkpoint, keeps only the current block boundary of the
// windows (spilled beyond the memory budget), writes each stage's result to a work
// directory as it completes (resumable), and streams the export. On models that fit in
// memory its numbers are RunPipeline's (the tests hold it to that).
func RunStreaming(env Env, opt PipelineOptions, so StreamOptions) (*RunReport, error) {
	if opt.AWQ {
		return nil, fmt.Errorf("run: AWQ scaling runs in memory (RunPipeline), not in the streaming pipeline")
	}
	if so.Sensitivity == "" {
		so.Sensitivity = SensExact
	}
	if so.Sensitivity != SensExact && so.Sensitivity != SensProxy {
		return nil, usagef("--sensitivity must be exact or proxy, not %q", so.Sensitivity)
	}
	if so.Sensitivity == SensProxy && opt.MaxKL > 0 {
		return nil, usagef("--sensitivity proxy ranks layers by their output error, which is not in KL units: plan with --target-bits, or use --sensitivity exact with --kl-budget")
	}
	p := &pipeline{env: env, opt: opt, so: so, src: opt.Src}
	if err := p.setup(); err != nil {
		if p.ex != nil {
			p.ex.close()
		}
		return nil, err
	}
	defer p.ex.close()
	defer p.ref.close()
	defer limitMemory(p.hostPeak())()
	rep := p.rep
	clock := newStageClock(env, rep)

	// 1-2. Calibration and sensitivity, one block at a time.
	p.bar = p.newBar("calibrate", int64(p.m.Blocks()*len(p.opt.Schemes)*7), "layer runs")
	err := p.calibrate()
	p.bar.Done()
	if err != nil {
		return nil, err
	}
	p.m.ReleaseHead() // the exact sensitivity's; verify reads it again
	detail := fmt.Sprintf("%d tokens, %s activation thresholds for %d layers", p.calTokens, opt.Calib, len(p.amax))
	if p.exact() && p.needGPTQ() { // the proxy collects none: quantize does, for the planned layers
		detail += ", GPTQ Hessians"
	}
	if p.resumed > 0 {
		detail += fmt.Sprintf(" (%d of %d blocks from the work directory)", p.resumed, p.m.Blocks())
	}
	clock.split("calibrate", detail, "sensitivity", p.sensSec,
		fmt.Sprintf("%d layers x %d schemes on %d tokens", len(p.names), len(p.opt.Schemes), p.sens.Tokens)+p.sensNote())
	p.sens.Model, p.sens.DType = rep.Model, p.src.DType().String()
	rep.Sensitivity, rep.SensitivityMode = p.sens, so.Sensitivity
	if p.proxy != nil {
		rho := spearmanOf(p.sens, p.proxy)
		rep.ProxySpearman = &rho
	}
	if err := env.stopped(); err != nil {
		return nil, err
	}

	// 3. Plan.
	res, err := p.makePlan()
	if err != nil {
		return nil, err
	}
	clock.done("plan", fmt.Sprintf("%.3f bits/weight on average, predicted %s %.5f", res.AvgBits, p.damageUnit(), res.Total))
	if err := env.stopped(); err != nil {
		return nil, err
	}

	// 4. Quantize, block by block, into the work directory.
	if err := p.quantize(); err != nil {
		return nil, err
	}
	if err := p.et.checkInputScales(env, p.layers); err != nil {
		return nil, err
	}
	clock.done("quantize", fmt.Sprintf("%d of %d linear layers quantized%s", len(p.layers), len(p.names), p.seqNote()))
	if err := env.stopped(); err != nil {
		return nil, err
	}

	// 5. Export to a staging directory beside Out, streamed.
	stageRoot, err := atomicfile.MkdirTemp(opt.Out)
	if err != nil {
		return nil, err
	}
	defer atomicfile.RemoveTemp(stageRoot)
	stageDir := filepath.Join(stageRoot, "export")
	cache, err := opt.TRT.render(env, trtCacheOf(p.amax, opt.Calib), TRTCacheFile)
	if err != nil {
		return nil, err
	}
	if err := p.exportStreaming(stageDir, map[string][]byte{TRTCacheFile: cache}); err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(stageDir, export.WeightsFile)); err == nil {
		rep.SizeAfter = st.Size()
	}
	clock.done("export", fmt.Sprintf("compressed-tensors for %s (%s scales), %s -> %s", p.et.t.Name, p.serve, HumanBytes(rep.SizeBefore), HumanBytes(rep.SizeAfter)))
	if err := env.stopped(); err != nil {
		return nil, err
	}

	// 6. Verify the export itself, read back, against full precision.
	r, err := export.OpenReader(stageDir)
	if err != nil {
		return nil, fmt.Errorf("verify: reading the export back: %w", err)
	}
	defer r.Close()
	cand, err := p.exportedModel(r, false)
	if err != nil {
		return nil, err
	}
	// The baseline is the run's own full-precision model (every layer plugged back by now):
	// a second copy would hold a second embedding and lm_head.
	p.m.ResetLinears()
	p.baseline = p.m
	v, err := p.verifyStreaming(cand)
	if err != nil {
		return nil, err
	}
	rep.Verify = v
	rep.FPTokensSec = float64(v.Tokens) / max(v.BaselineSec, 1e-9)
	rep.QTokensSec = float64(v.Tokens) / max(v.CandidateSec, 1e-9)
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL: " + fmt.Sprint(v.Failures)
	}
	clock.done("verify", fmt.Sprintf("ppl %.4f -> %.4f (%+.3f%%), KL %.5f, top-1 %.2f%%: %s",
		v.BaselinePPL, v.CandidatePPL, 100*v.PPLIncrease, v.KL, 100*v.Top1, verdict))
	if p.exact() {
		rep.MeasuredKL = v.KL
	}
	if err := p.latency(r); err != nil {
		return nil, err
	}
	clock.finish()

	if !v.Pass && !opt.IgnoreGate {
		return rep, fmt.Errorf("accuracy gate failed (%v): %s left unchanged; the work directory %s keeps the calibration and sensitivity (--resume with other planner options reuses them)", v.Failures, opt.Out, p.work.dir)
	}
	if err := writeSidecars(stageDir, rep); err != nil {
		return nil, err
	}
	r.Close()
	if err := publish(stageDir, opt.Out); err != nil {
		return nil, err
	}
	rep.Exported = true
	if !so.KeepWork {
		if err := p.work.remove(); err != nil {
			env.logf("warning: could not remove the work directory %s: %v\n", p.work.dir, err)
		}
	}
	return rep, nil
}

// setup checks the options, opens the work directory, plans memory and builds the model.
func (p *pipeline) setup() error {
	opt := &p.opt
	if opt.Batch <= 0 {
		opt.Batch = 8
	}
	if opt.BOS == 0 {
		opt.BOS = 1
	}
	if len(opt.Schemes) == 0 {
		opt.Schemes = defaultSchemes(p.src.Cfg)
	}
	if opt.Calib == 0 {
		opt.Calib = calib.MethodEntropy
	}
	if opt.Int4Method != "" && opt.Int4Method != "gptq" && opt.Int4Method != "rtn" {
		return fmt.Errorf("rounding method %q (want gptq or rtn)", opt.Int4Method)
	}
	p.serve = ServeDType(p.src.DType())
	et, err := openTarget(opt.Target, p.serve, sourceLayers(p.src))
	if err != nil {
		return err
	}
	p.et = et
	if et.warn == nil {
		keep, dropped := et.loadable(opt.Schemes)
		for _, d := range dropped {
			p.env.logf("note: %s loads no layer of this model as %s: not measured\n", et.t.Name, d)
		}
		opt.Schemes = keep
		if min, refused := et.minBits(keep, 16); len(opt.Overrides) == 0 && opt.TargetBits > 0 && opt.TargetBits < min-1e-9 {
			err := error(&plan.BudgetError{Target: opt.TargetBits, Cheapest: min, Constrained: refused || len(dropped) > 0})
			if why := et.fullOnly(keep); why != "" {
				err = fmt.Errorf("%w;\n%s", err, why)
			}
			return err
		}
	}
	if len(opt.Schemes) == 0 {
		return fmt.Errorf("run: no candidate scheme left to measure")
	}
	p.names = linearNames(p.src)
	p.rep = &RunReport{Model: p.src.displayPath(), Target: et.t.Name, Out: opt.Out, SizeBefore: p.src.Bytes()}
	cfg := p.src.Cfg
	seq := 2
	for _, w := range opt.Data.Calib {
		seq = max(seq, len(w))
	}
	stateRows := countTokens(opt.Data.Calib) + countTokens(opt.Data.Sens)
	budget, auto, err := p.deviceBudget()
	if err != nil {
		return err
	}
	if p.mem, err = planMemory(cfg, 4, model.BlockBytesOf(cfg), opt.Batch*seq, p.sensBatch()*seq, stateRows, budget); err != nil {
		return usagef("%v", err)
	}
	if auto { // the device holds one block at a time; the host keeps its usual few
		p.mem.Blocks = min(cfg.Layers, max(2, int(autoBlockBytes/max(p.mem.Block, 1))))
	}
	if p.m, err = p.src.NewLazyModel(p.mem.blockBudget()); err != nil {
		return err
	}
	if p.ex, err = p.newExec(p.m); err != nil {
		return err
	}
	p.m.ReleaseHead() // a device runner holds its own copy
	if p.so.Device.CUDA {
		p.env.logf("note: forward passes on %s, one block resident at a time; GPTQ, calibration statistics and the export on the CPU\n", p.ex.device())
	}
	wd := p.so.WorkDir
	if wd == "" {
		wd = defaultWorkDir(opt.Out)
	}
	p.work, err = openWork(p.env, wd, p.so.Resume, p.so.Force, p.fingerprints())
	if err != nil {
		return err
	}
	if p.mem.Budget > 0 || p.mem.Blocks < cfg.Layers {
		p.env.logf("streaming on %s: %s; work directory %s\n", p.ex.device(), p.mem, p.work.dir)
	}
	return nil
}

// deviceBudget is --max-device-mem, or on a GPU without it 80% of the device's memory
// (auto: the boundary states stay on the device up to it, then spill).
func (p *pipeline) deviceBudget() (budget int64, auto bool, err error) {
	if p.so.MaxDeviceMem > 0 || !p.so.Device.CUDA {
		return p.so.MaxDeviceMem, false, nil
	}
	b, err := backend.OpenDevice(p.so.Device)
	if err != nil {
		return 0, false, err
	}
	defer b.Close()
	return int64(b.Info().MemoryBytes) / 10 * 8, true, nil
}
