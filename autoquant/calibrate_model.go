package autoquant

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
)

// ModelCalibration are the options of calibration from text (`autoq calibrate --model`,
// package calibrun): windows of the data, workers, rounds and diagnostics.
type ModelCalibration struct {
	Model, Data, Tokenizer string
	Tokens, SeqLen, Batch  int
	Split                  string // calib (first half), eval (second half) or all
	Workers                int    // CPU workers
	HostForward            bool   // on a GPU: forward on the CPU, bin on the GPU
	Rounds                 int
	Tolerance              float64
	OutlierRatio           float64
	MinTokens              int
	Plot                   string // directory for PNG charts
	PlotTop                int
	CoverageJSON           string
}

func (f *ModelCalibration) check() error {
	switch {
	case f.Data == "":
		return usagef("--model needs --data (calibration text or .jsonl token ids)")
	case f.SeqLen < 2:
		return usagef("--seq-len must be at least 2, got %d", f.SeqLen)
	case f.Batch < 1:
		return usagef("--batch must be at least 1, got %d", f.Batch)
	case f.Tokens < 0:
		return usagef("--tokens must not be negative, got %d", f.Tokens)
	case f.Rounds < 1:
		return usagef("--rounds must be at least 1, got %d", f.Rounds)
	case f.Workers < 1:
		return usagef("--workers must be at least 1, got %d", f.Workers)
	case !(f.Tolerance > 0):
		return usagef("--tolerance must be positive, got %v", f.Tolerance)
	case !(f.OutlierRatio > 1):
		return usagef("--outlier-ratio must be above 1, got %v", f.OutlierRatio)
	case f.MinTokens < 0:
		return usagef("--min-tokens must not be negative, got %d", f.MinTokens)
	case f.Split != "calib" && f.Split != "eval" && f.Split != "all":
		return usagef("--split must be calib, eval or all, got %q", f.Split)
	}
	return nil
}

// checkWorkers refuses the combinations of --device and --workers openWorkers cannot run.
func checkWorkers(device string, workers int) error {
	if workers > 1 && device == "cuda:all" {
		return usagef("--workers applies to the CPU; --device cuda:all runs one worker per GPU")
	}
	if workers > 1 && device != "cpu" && device != "auto" {
		return usagef("--workers %d runs CPU workers; use --device cpu (or cuda:all for every GPU)", workers)
	}
	return nil
}

// calibrateModel is Calibrate with a model: calibrun over the data, diagnostics, charts.
func calibrateModel(env Env, o CalibrateOptions) (*CalibrateReport, error) {
	f := &o.ModelCalibration
	if err := f.check(); err != nil {
		return nil, err
	}
	opt, si, sn, err := o.shardOptions()
	if err != nil {
		return nil, err
	}
	if err := checkWorkers(o.Device, f.Workers); err != nil {
		return nil, err
	}
	if o.ChannelAbsMax {
		env.logf("note: --channel-absmax is implied by --model (per-channel absmax is always tracked)\n")
	}
	if err := checkOutputs(env, o.Force, []string{f.Model, f.Data, f.Tokenizer}, o.targets(shardTarget(o.Histograms, si, sn),
		outFile("--coverage-json", f.CoverageJSON), outDir("--plot", f.Plot, calibrun.ChartsKind))...); err != nil {
		return nil, err
	}
	if err := checkData(f.Model, f.Data); err != nil {
		return nil, err
	}
	m, tok, err := loadModelAndTokenizer(f.Model, f.Tokenizer, f.Data, Rotation{})
	if err != nil {
		return nil, err
	}
	engines, err := openWorkers(env, o.Device, f.Workers)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, b := range engines {
			b.Close()
		}
	}()
	ces := make([]calib.Engine, len(engines))
	for i, b := range engines {
		ces[i] = b
	}
	runners, err := openCalibRunners(env, m, engines, f.HostForward)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range runners {
			r.Close()
		}
	}()
	bar := progress.New(env.bars(), "calibrate", int64(f.Tokens/sn), "tokens")
	r, err := calibrun.Run(m, f.Data, tok, calibrun.Options{Ctx: env.Ctx,
		SeqLen: f.SeqLen, Batch: f.Batch, Tokens: f.Tokens, Split: f.Split, Shard: si, Shards: sn,
		Rounds: f.Rounds, Calib: opt, Engines: ces, Runners: runners, Tolerance: f.Tolerance, OutlierRatio: f.OutlierRatio,
		MinTokens: max(f.MinTokens, 1), Progress: func(n int) { bar.Add(int64(n)) },
	})
	bar.Done()
	if err != nil {
		return nil, err
	}
	for _, h := range r.Hists {
		if o.FailOnNonFinite && h.NaN+h.Inf > 0 {
			return nil, fmt.Errorf("%s on %s: the input of %s held %d NaN and %d Inf values", f.Model, f.Data, h.Name, h.NaN, h.Inf)
		}
	}
	if r.Windows == 0 {
		env.logf("warning: shard %d/%d got no window (the stream has %d): its histograms are empty\n", si, sn, r.Total)
	}
	rep := calibrun.Diagnose(r)
	source := fmt.Sprintf("%s on %s (shard %d/%d)", filepath.Base(f.Model), filepath.Base(f.Data), si, sn)
	if o.Histograms != "" {
		if err := os.MkdirAll(o.Histograms, 0o755); err != nil {
			return nil, err
		}
		p := shardStatePath(o.Histograms, si, sn)
		if err := calib.WriteStateFile(p, r.State(source)); err != nil {
			return nil, err
		}
		env.logf("wrote %s\n", p)
	}
	s, err := r.Session(ces[0], source)
	if err != nil {
		return nil, err
	}
	tab, err := o.writeTable(env, s, opt)
	if err != nil {
		return nil, err
	}
	if f.CoverageJSON != "" {
		if err := writeJSONFile(f.CoverageJSON, rep); err != nil {
			return nil, err
		}
	}
	if f.Plot != "" {
		files, err := calibrun.Plot(r, rep, f.Plot, f.PlotTop)
		if err != nil {
			return nil, err
		}
		env.logf("wrote %d charts into %s\n", len(files), f.Plot)
	}
	out := &CalibrateReport{Table: tab, Diagnostics: rep}
	if o.RequireConverged && !rep.Converged {
		return out, notConverged(rep)
	}
	return out, nil
}

// openCalibRunners opens one GPU model runner per CUDA engine, so that the forward passes
// run on the devices and activations are binned there (nil when the engines are CPUs, or
// with HostForward).
func openCalibRunners(env Env, m *model.Model, engines []backend.Backend, hostForward bool) ([]model.Runner, error) {
	if hostForward {
		return nil, nil
	}
	var rs []model.Runner
	for _, b := range engines {
		info := b.Info()
		if info.Kind != "cuda" {
			return nil, nil
		}
		r, err := model.OpenRunner(backend.Device{CUDA: true, Index: info.Index}, m, model.RunnerOptions{})
		if err != nil {
			for _, o := range rs {
				o.Close()
			}
			return nil, fmt.Errorf("GPU model runner on cuda:%d: %w (--host-forward runs the forward pass on the CPU)", info.Index, err)
		}
		rs = append(rs, r)
	}
	env.logf("forward: GPU model runner on %d device(s), F16 activations binned on the device\n", len(rs))
	return rs, nil
}
