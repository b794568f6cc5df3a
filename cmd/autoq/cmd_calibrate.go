package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/progress"
	"github.com/spf13/pflag"
)

// calibFlags are the threshold and output flags shared by calibrate and calib merge.
type calibFlags struct {
	method     string
	percentile float64
	levels     int
	zeroSpike  bool
	out        string
	trtCache   string
	trtVersion string
	device     string
	asJSON     bool
}

func (c *calibFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.method, "method", "entropy", "calibrator: entropy, percentile, mse or max")
	fs.Float64Var(&c.percentile, "percentile", calib.DefaultPercentile, "percentile for --method percentile, in (0, 100]")
	fs.IntVar(&c.levels, "levels", 127, "positive quantization levels: 127 for int8, 255 for uint8")
	fs.BoolVar(&c.zeroSpike, "zero-spike", true, "entropy: replace bin 0 by bin 1 before the search (Model Optimizer's behaviour)")
	fs.StringVar(&c.out, "out", "", "write the calibration table (JSON) here")
	fs.StringVar(&c.trtCache, "trt-cache", "", "also write a TensorRT calibration cache here")
	fs.StringVar(&c.trtVersion, "trt-version", calib.DefaultTRTVersion, "TensorRT version number in the cache header")
	fs.StringVar(&c.device, "device", "auto", "auto, cpu, cuda or cuda:N")
	fs.BoolVar(&c.asJSON, "json", false, "print the table as JSON instead of text")
}

func (c *calibFlags) options() (calib.Options, error) {
	m, err := calib.ParseMethod(c.method)
	if err != nil {
		return calib.Options{}, usagef("--method: %v", err)
	}
	opt := calib.Options{Method: m, Percentile: c.percentile, Levels: c.levels, ZeroSpike: c.zeroSpike}
	if !(c.percentile > 0 && c.percentile <= 100) {
		return opt, usagef("--percentile must be in (0, 100], got %v", c.percentile)
	}
	if c.levels < 1 || c.levels > 32767 {
		return opt, usagef("--levels must be in 1..32767, got %d", c.levels)
	}
	return opt, nil
}

// openCalibEngine opens --device (usage error for a bad spec) and says which runs the work.
func openCalibEngine(e *env, spec string) (backend.Backend, error) {
	b, fallback, err := backend.Open(spec)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown device") || strings.HasPrefix(err.Error(), "bad device") {
			return nil, usagef("--device: %v", err)
		}
		return nil, err
	}
	if info := b.Info(); fallback != "" {
		fmt.Fprintf(e.stderr, "device: %s (%s)\n", info.Kind, fallback)
	} else {
		fmt.Fprintf(e.stderr, "device: %s %s\n", info.Kind, info.Name)
	}
	return b, nil
}

// finish computes the table and writes every requested output.
func (c *calibFlags) finish(e *env, s *calib.Session, opt calib.Options) error {
	for _, h := range s.NonFinite() {
		fmt.Fprintf(e.stderr, "warning: tensor %q: %d NaN and %d Inf values (counted, not binned)\n", h.Name, h.NaN, h.Inf)
	}
	tab, err := s.Table(opt)
	if err != nil {
		return err
	}
	for _, t := range tab.Tensors {
		if t.Empty {
			fmt.Fprintf(e.stderr, "warning: tensor %q has no non-zero finite value: amax 0, left out of the TensorRT cache\n", t.Name)
		}
	}
	if c.out != "" {
		if err := tab.WriteFile(c.out); err != nil {
			return err
		}
	}
	if c.trtCache != "" {
		tc, err := calib.TRTCacheFromTable(tab, c.trtVersion)
		if err != nil {
			return err
		}
		if err := tc.WriteFile(c.trtCache); err != nil {
			return err
		}
	}
	if c.asJSON {
		b, err := tab.Marshal()
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(b)
		return err
	}
	return tab.WriteText(e.stdout)
}

func init() {
	var (
		c       calibFlags
		globPat string
		shard   string
		histDir string
		failNF  bool
		chanAbs bool
		mc      modelCalibFlags
	)
	register(&command{
		name:    "calibrate",
		summary: "calibrate activation thresholds (entropy/percentile/mse/max) from activation dumps, or by running the model on text",
		usage: "(--activations 'GLOB' | --model MODEL --data FILE) [flags]\n\nEach tensor name in the dumps is one calibrated tensor (F32, F16 or BF16). Files are\n" +
			"streamed one at a time in sorted order; --shard I/N takes the files whose index is I mod N,\n" +
			"and --histograms DIR saves exact histogram state for `autoq calib merge`." + calibrateModelUsage,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&globPat, "activations", "", "glob of .safetensors activation dumps (quote it)")
			c.register(fs)
			fs.StringVar(&shard, "shard", "0/1", "I/N: process files with index % N == I")
			fs.StringVar(&histDir, "histograms", "", "write this shard's histogram state to DIR/histograms-I-of-N.json")
			fs.BoolVar(&failNF, "fail-on-nonfinite", false, "make NaN/Inf in any tensor an error")
			fs.BoolVar(&chanAbs, "channel-absmax", false, "also track per-channel absmax (reported as max/median)")
			mc.register(fs)
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if mc.model != "" {
				if globPat != "" {
					return usagef("give either --activations or --model, not both")
				}
				return runCalibrateModel(e, &c, &mc, shard, histDir, failNF, args)
			}
			if len(args) != 0 {
				return usagef("unexpected arguments %q (quote the --activations glob)", args)
			}
			if globPat == "" {
				return usagef("--activations is required")
			}
			opt, err := c.options()
			if err != nil {
				return err
			}
			si, sn, err := parseShard(shard)
			if err != nil {
				return err
			}
			eng, err := openCalibEngine(e, c.device)
			if err != nil {
				return err
			}
			defer eng.Close()
			files, err := filepath.Glob(globPat)
			if err != nil {
				return usagef("--activations: %v", err)
			}
			if len(files) == 0 {
				return fmt.Errorf("no files match %q", globPat)
			}
			sort.Strings(files)
			var mine []string
			for i, f := range files {
				if i%sn == si {
					mine = append(mine, f)
				}
			}
			s := calib.NewSession(calib.SessionOptions{Engine: eng, ChannelAbsMax: chanAbs, FailOnNonFinite: failNF})
			bar := progress.New(e.stderr, "calibrate", int64(len(mine)), "files")
			for _, f := range mine {
				if err := s.AddFile(f); err != nil {
					return err
				}
				bar.Add(1)
			}
			bar.Done()
			if histDir != "" {
				if err := os.MkdirAll(histDir, 0o755); err != nil {
					return err
				}
				p := filepath.Join(histDir, fmt.Sprintf("histograms-%05d-of-%05d.json", si, sn))
				st := s.State()
				if st.Shard, err = calib.DumpShardRecord(files, si, sn, chanAbs); err != nil {
					return err
				}
				if err := calib.WriteStateFile(p, st); err != nil {
					return err
				}
			}
			return c.finish(e, s, opt)
		},
	})
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
