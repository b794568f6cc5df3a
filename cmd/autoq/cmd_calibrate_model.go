package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/spf13/pflag"
)

// modelCalibFlags are the flags of `autoq calibrate --model`: calibration from text by
// running the model (package calibrun), with diagnostics.
type modelCalibFlags struct {
	model, data, tokenizer string
	tokens, seqLen, batch  int
	split                  string
	workers                int
	hostForward            bool
	rounds                 int
	tolerance              float64
	outlierRatio           float64
	minTokens              int
	plot                   string
	plotTop                int
	coverageJSON           string
}

const calibrateModelUsage = "\n\nWith --model: calibrate from text. The data (--data: text, paragraphs split at blank lines,\n" +
	"or .jsonl token ids) is tokenized and cut into windows of --seq-len tokens (eval's windowing,\n" +
	"--split calib = first half of the file); the full-precision model runs over them in batches\n" +
	"and the input of every linear layer is binned under the layer's name. --shard I/N takes the\n" +
	"windows whose index is I mod N; --device cuda:all runs one worker per GPU, --workers N that\n" +
	"many CPU workers (histograms merge exactly). --rounds R recomputes every threshold after each\n" +
	"of R slices of the stream and flags tensors whose amax still moves (--tolerance); the report\n" +
	"adds coverage, clipping rates, outlier channels and warnings (--coverage-json, --plot);\n" +
	"--json prints {\"table\": ..., \"diagnostics\": ...}. See docs/CALIBRATION.md."

func (f *modelCalibFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.model, "model", "", "calibrate from text: llama2.c .bin file or Hugging Face model directory")
	fs.StringVar(&f.data, "data", "", "with --model: calibration text (.txt) or token ids (.jsonl)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "with --model: tokenizer (tok*.bin or tokenizer.json); default: beside the model")
	fs.IntVar(&f.tokens, "tokens", 65536, "with --model: tokens of the stream to use (before sharding); 0 = all")
	fs.IntVar(&f.seqLen, "seq-len", 256, "with --model: window length in tokens")
	fs.IntVar(&f.batch, "batch", 8, "with --model: windows per forward pass")
	fs.StringVar(&f.split, "split", "calib", "with --model: part of the data file: calib (first half), eval (second half) or all")
	fs.IntVar(&f.workers, "workers", 1, "with --model: CPU workers, each with its own forward passes and histograms")
	fs.BoolVar(&f.hostForward, "host-forward", false, "with --model on a GPU: run the forward pass on the CPU (F32, bit-identical to a CPU run) and only bin on the GPU, instead of the GPU model runner (F16 activations binned on the device)")
	fs.IntVar(&f.rounds, "rounds", calibrun.DefaultRounds, "with --model: consecutive rounds of the stream for the convergence check")
	fs.Float64Var(&f.tolerance, "tolerance", calibrun.DefaultTolerance, "with --model: relative amax change in the last round above which a tensor is unsettled")
	fs.Float64Var(&f.outlierRatio, "outlier-ratio", calibrun.DefaultOutlierRatio, "with --model: flag channels whose absmax exceeds this multiple of the median channel absmax")
	fs.IntVar(&f.minTokens, "min-tokens", calibrun.DefaultMinTokens, "with --model: warn when calibrating on fewer tokens")
	fs.StringVar(&f.plot, "plot", "", "with --model: write histogram and convergence charts (PNG) into DIR")
	fs.IntVar(&f.plotTop, "plot-top", 0, "with --plot: chart only the N most clipped tensors (0 = all)")
	fs.StringVar(&f.coverageJSON, "coverage-json", "", "with --model: write the diagnostics (rounds, coverage, warnings) as JSON here")
}

// runCalibrateModel is `autoq calibrate --model ...`. shard, histDir and failNF are the
// flags the activation-dump mode shares (per-channel absmax is always collected here).
func runCalibrateModel(e *env, c *calibFlags, f *modelCalibFlags, shard, histDir string, failNF bool, args []string) error {
	if len(args) != 0 {
		return usagef("unexpected arguments %q", args)
	}
	if f.data == "" {
		return usagef("--model needs --data (calibration text or .jsonl token ids)")
	}
	opt, err := c.options()
	if err != nil {
		return err
	}
	si, sn, err := parseShard(shard)
	if err != nil {
		return err
	}
	switch {
	case f.seqLen < 2:
		return usagef("--seq-len must be at least 2, got %d", f.seqLen)
	case f.batch < 1:
		return usagef("--batch must be at least 1, got %d", f.batch)
	case f.tokens < 0:
		return usagef("--tokens must not be negative, got %d", f.tokens)
	case f.rounds < 1:
		return usagef("--rounds must be at least 1, got %d", f.rounds)
	case f.workers < 1:
		return usagef("--workers must be at least 1, got %d", f.workers)
	case !(f.tolerance > 0):
		return usagef("--tolerance must be positive, got %v", f.tolerance)
	case !(f.outlierRatio > 1):
		return usagef("--outlier-ratio must be above 1, got %v", f.outlierRatio)
	case f.minTokens < 0:
		return usagef("--min-tokens must not be negative, got %d", f.minTokens)
	case f.split != "calib" && f.split != "eval" && f.split != "all":
		return usagef("--split must be calib, eval or all, got %q", f.split)
	}
	m, tok, err := loadModelAndTokenizer(f.model, f.tokenizer, f.data)
	if err != nil {
		return err
	}
	engines, err := openCalibWorkers(e, c.device, f.workers)
	if err != nil {
		return err
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
	runners, err := openCalibRunners(e, m, engines, f.hostForward)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range runners {
			r.Close()
		}
	}()
	bar := progress.New(e.stderr, "calibrate", int64(f.tokens/sn), "tokens")
	r, err := calibrun.Run(m, f.data, tok, calibrun.Options{
		SeqLen: f.seqLen, Batch: f.batch, Tokens: f.tokens, Split: f.split, Shard: si, Shards: sn,
		Rounds: f.rounds, Calib: opt, Engines: ces, Runners: runners, Tolerance: f.tolerance, OutlierRatio: f.outlierRatio,
		MinTokens: max(f.minTokens, 1), Progress: func(n int) { bar.Add(int64(n)) },
	})
	bar.Done()
	if err != nil {
		return err
	}
	for _, h := range r.Hists {
		if failNF && h.NaN+h.Inf > 0 {
			return fmt.Errorf("%s on %s: the input of %s held %d NaN and %d Inf values", f.model, f.data, h.Name, h.NaN, h.Inf)
		}
	}
	if r.Windows == 0 {
		fmt.Fprintf(e.stderr, "warning: shard %d/%d got no window (the stream has %d): its histograms are empty\n", si, sn, r.Total)
	}
	rep := calibrun.Diagnose(r)
	source := fmt.Sprintf("%s on %s (shard %d/%d)", filepath.Base(f.model), filepath.Base(f.data), si, sn)
	if histDir != "" {
		if err := os.MkdirAll(histDir, 0o755); err != nil {
			return err
		}
		p := filepath.Join(histDir, fmt.Sprintf("histograms-%05d-of-%05d.json", si, sn))
		if err := calib.WriteStateFile(p, r.State(source)); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", p)
	}
	s, err := r.Session(ces[0], source)
	if err != nil {
		return err
	}
	tab, err := writeCalibOutputs(e, c, s, opt)
	if err != nil {
		return err
	}
	if f.coverageJSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.coverageJSON, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if f.plot != "" {
		files, err := calibrun.Plot(r, rep, f.plot, f.plotTop)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %d charts into %s\n", len(files), f.plot)
	}
	if c.asJSON {
		b, err := json.MarshalIndent(struct {
			Table       *calib.Table     `json:"table"`
			Diagnostics *calibrun.Report `json:"diagnostics"`
		}{tab, rep}, "", "  ")
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(append(b, '\n'))
		return err
	}
	return rep.WriteText(e.stdout)
}

// openCalibWorkers opens the engines of the workers: every CUDA device for "cuda:all",
// otherwise --device once, or `workers` CPU engines.
func openCalibWorkers(e *env, device string, workers int) ([]backend.Backend, error) {
	if device == "cuda:all" {
		if workers != 1 {
			return nil, usagef("--workers applies to the CPU; --device cuda:all runs one worker per GPU")
		}
		n, err := backend.CUDADevices()
		if err != nil {
			return nil, err
		}
		var bs []backend.Backend
		for i := range n {
			b, err := openCalibEngine(e, fmt.Sprintf("cuda:%d", i))
			if err != nil {
				for _, o := range bs {
					o.Close()
				}
				return nil, err
			}
			bs = append(bs, b)
		}
		return bs, nil
	}
	if workers > 1 {
		if device != "cpu" && device != "auto" {
			return nil, usagef("--workers %d runs CPU workers; use --device cpu (or cuda:all for every GPU)", workers)
		}
		bs := make([]backend.Backend, workers)
		for i := range bs {
			bs[i] = backend.NewCPU()
		}
		fmt.Fprintf(e.stderr, "device: cpu (%d workers)\n", workers)
		return bs, nil
	}
	b, err := openCalibEngine(e, device)
	if err != nil {
		return nil, err
	}
	return []backend.Backend{b}, nil
}

// writeCalibOutputs computes the table and writes --out and --trt-cache, with the same
// warnings as the activation-dump mode.
func writeCalibOutputs(e *env, c *calibFlags, s *calib.Session, opt calib.Options) (*calib.Table, error) {
	for _, h := range s.NonFinite() {
		fmt.Fprintf(e.stderr, "warning: tensor %q: %d NaN and %d Inf values (counted, not binned)\n", h.Name, h.NaN, h.Inf)
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
		fmt.Fprintf(e.stderr, "warning: no non-zero finite value for %s: amax 0, left out of the TensorRT cache\n", strings.Join(empty, ", "))
	}
	if c.out != "" {
		if err := tab.WriteFile(c.out); err != nil {
			return nil, err
		}
	}
	if c.trtCache != "" {
		tc, err := calib.TRTCacheFromTable(tab, c.trtVersion)
		if err != nil {
			return nil, err
		}
		if err := tc.WriteFile(c.trtCache); err != nil {
			return nil, err
		}
	}
	return tab, nil
}

// openCalibRunners opens one GPU model runner per CUDA engine, so that the forward passes
// run on the devices and activations are binned there (nil when the engines are CPUs, or
// with --host-forward).
func openCalibRunners(e *env, m *model.Model, engines []backend.Backend, hostForward bool) ([]model.Runner, error) {
	if hostForward {
		return nil, nil
	}
	var rs []model.Runner
	for _, b := range engines {
		info := b.Info()
		if info.Kind != "cuda" {
			return nil, nil
		}
		r, err := model.OpenRunner(fmt.Sprintf("cuda:%d", info.Index), m, model.RunnerOptions{})
		if err != nil {
			for _, o := range rs {
				o.Close()
			}
			return nil, fmt.Errorf("GPU model runner on cuda:%d: %w (--host-forward runs the forward pass on the CPU)", info.Index, err)
		}
		rs = append(rs, r)
	}
	fmt.Fprintf(e.stderr, "forward: GPU model runner on %d device(s), F16 activations binned on the device\n", len(rs))
	return rs, nil
}
