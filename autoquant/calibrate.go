package autoquant

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
)

// CalibOutput is the calibrator and the outputs shared by Calibrate and CalibMerge.
type CalibOutput struct {
	Method     string  // entropy, percentile, mse or max
	Percentile float64 // for percentile, in (0, 100]
	Levels     int     // positive quantization levels: 127 for int8
	ZeroSpike  bool    // entropy: replace bin 0 by bin 1 (Model Optimizer's behaviour)
	Out        string  // calibration table (JSON)
	TRTCache   string  // TensorRT calibration cache
	TRTVersion string  // version in the cache header
	TRTNames   string  // JSON map from module names to network tensor names (keys of the cache)
	Device     string
	Force      bool // overwrite existing output files
}

func (c *CalibOutput) options() (calib.Options, error) {
	m, err := calib.ParseMethod(c.Method)
	if err != nil {
		return calib.Options{}, usagef("--method: %v", err)
	}
	opt := calib.Options{Method: m, Percentile: c.Percentile, Levels: c.Levels, ZeroSpike: c.ZeroSpike}
	if !(c.Percentile > 0 && c.Percentile <= 100) {
		return opt, usagef("--percentile must be in (0, 100], got %v", c.Percentile)
	}
	if c.Levels < 1 || c.Levels > 32767 {
		return opt, usagef("--levels must be in 1..32767, got %d", c.Levels)
	}
	if c.TRTNames != "" && c.TRTCache == "" {
		return opt, usagef("--trt-names needs --trt-cache (it renames the cache's keys)")
	}
	if err := (TRTOptions{TRTNames: c.TRTNames, TRTVersion: c.TRTVersion}).checkTRT(); err != nil {
		return opt, err
	}
	return opt, nil
}

// CalibrateOptions configures Calibrate (`autoq calibrate`): from activation dumps
// (Activations) or by running Model on Data (the calibrun fields).
type CalibrateOptions struct {
	CalibOutput
	Activations     string // glob of .safetensors activation dumps
	Shard           string // I/N
	Histograms      string // write this shard's histogram state into this directory
	FailOnNonFinite bool
	ChannelAbsMax   bool // dumps: also track per-channel absmax (always on with Model)
	// RequireConverged (with Model) fails the job after the report when the thresholds
	// have not settled over the rounds.
	RequireConverged bool
	ModelCalibration
}

// notConverged is the error of a calibration whose thresholds still move.
func notConverged(rep *calibrun.Report) error {
	if len(rep.Unsettled) > 0 {
		return fmt.Errorf("calibration not converged: %d of %d tensors still move more than %.3g%% per round (%s): calibrate on more data or raise --tolerance",
			len(rep.Unsettled), len(rep.Tensors), 100*rep.Settings.Tolerance, strings.Join(rep.Unsettled, ", "))
	}
	return fmt.Errorf("calibration not converged: thresholds settled, but on only %d tokens (minimum %d)", rep.Coverage.Tokens, rep.Settings.MinTokens)
}

// CalibrateReport is the result of Calibrate or CalibMerge: the table, and with a model
// the diagnostics (rounds, coverage, outliers).
type CalibrateReport struct {
	Table       *calib.Table     `json:"table"`
	Diagnostics *calibrun.Report `json:"diagnostics"`
}

// MarshalJSON is the table alone when there are no diagnostics (dumps, merge).
func (r *CalibrateReport) MarshalJSON() ([]byte, error) {
	if r.Diagnostics == nil {
		return json.Marshal(r.Table)
	}
	type both CalibrateReport
	return json.Marshal((*both)(r))
}

// WriteTable prints the diagnostics report, or the table.
func (r *CalibrateReport) WriteTable(w io.Writer) {
	if r.Diagnostics != nil {
		r.Diagnostics.WriteText(w)
		return
	}
	r.Table.WriteText(w)
}

// parseShard parses "I/N" with 0 <= I < N.
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usagef("--shard %q: want I/N with 0 <= I < N", s)
	}
	return i, n, nil
}

// shardOptions is options() and the shard this run calibrates (--shard I/N: shard si of sn).
func (o *CalibrateOptions) shardOptions() (opt calib.Options, si, sn int, err error) {
	if opt, err = o.options(); err != nil {
		return opt, 0, 0, err
	}
	si, sn, err = parseShard(o.Shard)
	return opt, si, sn, err
}

// shardStatePath is where --histograms DIR puts shard i of n.
func shardStatePath(dir string, i, n int) string {
	return filepath.Join(dir, fmt.Sprintf("histograms-%05d-of-%05d.json", i, n))
}

// Calibrate is `autoq calibrate`: activation thresholds from dumps, or from the model run
// on text (Model set).
func Calibrate(env Env, o CalibrateOptions) (*CalibrateReport, error) {
	if o.Model != "" {
		if o.Activations != "" {
			return nil, usagef("give either --activations or --model, not both")
		}
		return calibrateModel(env, o)
	}
	if o.Activations == "" {
		return nil, usagef("--activations is required")
	}
	if _, _, err := backend.Select(o.Device); err != nil {
		return nil, deviceErr(err)
	}
	if o.RequireConverged {
		return nil, usagef("--require-converged needs --model (convergence is measured over rounds of the model's data)")
	}
	opt, si, sn, err := o.shardOptions()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(o.Activations)
	if err != nil {
		return nil, usagef("--activations: %v", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no files match %q", o.Activations)
	}
	sort.Strings(files)
	if err := checkOutputs(env, o.Force, files, o.targets(shardTarget(o.Histograms, si, sn))...); err != nil {
		return nil, err
	}
	eng, err := openEngine(env, o.Device)
	if err != nil {
		return nil, err
	}
	defer eng.b.Close()
	var mine []string
	for i, f := range files {
		if i%sn == si {
			mine = append(mine, f)
		}
	}
	s := calib.NewSession(calib.SessionOptions{Engine: eng.b, ChannelAbsMax: o.ChannelAbsMax, FailOnNonFinite: o.FailOnNonFinite})
	bar := progress.New(env.bars(), "calibrate", int64(len(mine)), "files")
	for _, f := range mine {
		if err := s.AddFile(f); err != nil {
			return nil, err
		}
		bar.Add(1)
	}
	bar.Done()
	if o.Histograms != "" {
		if err := os.MkdirAll(o.Histograms, 0o755); err != nil {
			return nil, err
		}
		st := s.State()
		if st.Shard, err = calib.DumpShardRecord(files, si, sn, o.ChannelAbsMax); err != nil {
			return nil, err
		}
		if err := calib.WriteStateFile(shardStatePath(o.Histograms, si, sn), st); err != nil {
			return nil, err
		}
	}
	tab, err := o.writeTable(env, s, opt)
	if err != nil {
		return nil, err
	}
	return &CalibrateReport{Table: tab}, nil
}

// CalibMergeOptions configures CalibMerge (`autoq calib merge`).
type CalibMergeOptions struct {
	CalibOutput
	Shards []string // state files, or directories of histograms-*.json
}

// CalibMerge is `autoq calib merge`: shard histogram states merged exactly into one table.
func CalibMerge(env Env, o CalibMergeOptions) (*CalibrateReport, error) {
	if len(o.Shards) == 0 {
		return nil, usagef("expected at least one SHARD state file or directory")
	}
	opt, err := o.options()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, a := range o.Shards {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(a, "histograms-*.json"))
		if len(m) == 0 {
			return nil, fmt.Errorf("%s: directory holds no histograms-*.json state files", a)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	seen := map[string]bool{}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		if seen[abs] {
			return nil, usagef("state file %s given twice (its counts would be added twice)", f)
		}
		seen[abs] = true
	}
	if err := checkOutputs(env, o.Force, files, o.targets()...); err != nil {
		return nil, err
	}
	eng, err := openEngine(env, o.Device)
	if err != nil {
		return nil, err
	}
	defer eng.b.Close()
	states, err := calib.ReadShardSet(files)
	if err != nil {
		return nil, err
	}
	s := calib.NewSession(calib.SessionOptions{Engine: eng.b})
	for i, st := range states {
		if err := s.MergeState(st, files[i]); err != nil {
			return nil, err
		}
	}
	tab, err := o.writeTable(env, s, opt)
	if err != nil {
		return nil, err
	}
	return &CalibrateReport{Table: tab}, nil
}

// writeTable computes the table, warns about non-finite and empty tensors, and writes Out
// and TRTCache.
func (c *CalibOutput) writeTable(env Env, s *calib.Session, opt calib.Options) (*calib.Table, error) {
	for _, h := range s.NonFinite() {
		env.logf("warning: tensor %q: %d NaN and %d Inf values (counted, not binned)\n", h.Name, h.NaN, h.Inf)
	}
	tab, err := s.Table(opt)
	if err != nil {
		return nil, err
	}
	var empty []string
	for _, t := range tab.Tensors {
		if t.Empty {
			empty = append(empty, t.Name)
		}
	}
	if len(empty) > 0 {
		env.logf("warning: no non-zero finite value for %s: amax 0, left out of the TensorRT cache\n", strings.Join(empty, ", "))
	}
	if c.Out != "" {
		if err := tab.WriteFile(c.Out); err != nil {
			return nil, err
		}
	}
	if c.TRTCache != "" {
		tc, err := calib.TRTCacheFromTable(tab, c.TRTVersion)
		if err != nil {
			return nil, err
		}
		b, err := TRTOptions{TRTNames: c.TRTNames, TRTVersion: c.TRTVersion}.render(env, tc, c.TRTCache)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(c.TRTCache, b, 0o644); err != nil {
			return nil, err
		}
	}
	return tab, nil
}

// openWorkers opens the engines of the calibration workers: every CUDA device for
// "cuda:all", otherwise the device once, or `workers` CPU engines.
func openWorkers(env Env, device string, workers int) ([]backend.Backend, error) {
	if workers > 1 {
		if device == "cuda:all" {
			return nil, usagef("--workers applies to the CPU; --device cuda:all runs one worker per GPU")
		}
		if device != "cpu" && device != "auto" {
			return nil, usagef("--workers %d runs CPU workers; use --device cpu (or cuda:all for every GPU)", workers)
		}
		bs := make([]backend.Backend, workers)
		for i := range bs {
			bs[i] = backend.NewCPU()
		}
		env.logf("device: cpu (%d workers)\n", workers)
		return bs, nil
	}
	if device != "cuda:all" {
		e, err := openEngine(env, device)
		if err != nil {
			return nil, err
		}
		return []backend.Backend{e.b}, nil
	}
	devs, _, err := backend.Select(device)
	if err != nil {
		return nil, deviceErr(err)
	}
	var bs []backend.Backend
	for _, d := range devs {
		e, err := openEngine(env, d.String())
		if err != nil {
			for _, o := range bs {
				o.Close()
			}
			return nil, err
		}
		bs = append(bs, e.b)
	}
	return bs, nil
}

// targets are the output files of the calibrator (the table and the TensorRT cache), plus
// extra ones.
func (c *CalibOutput) targets(extra ...atomicfile.Target) []atomicfile.Target {
	return append([]atomicfile.Target{outFile("--out", c.Out), outFile("--trt-cache", c.TRTCache)}, extra...)
}

// shardTarget is the state file --histograms DIR gets for shard i of n ("" without DIR).
func shardTarget(dir string, i, n int) atomicfile.Target {
	if dir == "" {
		return atomicfile.Target{}
	}
	return outFile("--histograms", shardStatePath(dir, i, n))
}
