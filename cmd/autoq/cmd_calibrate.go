package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/spf13/pflag"
)

// registerCalibOutput declares the calibrator and output flags of calibrate and calib merge.
func registerCalibOutput(fs *pflag.FlagSet, c *autoquant.CalibOutput) {
	fs.StringVar(&c.Method, "method", defaultCalibrator, "calibrator: entropy, percentile, mse or max")
	fs.Float64Var(&c.Percentile, "percentile", calib.DefaultPercentile, "percentile for --method percentile, in (0, 100]")
	fs.IntVar(&c.Levels, "levels", 127, "positive quantization levels: 127 for int8, 255 for uint8")
	fs.BoolVar(&c.ZeroSpike, "zero-spike", true, "entropy: replace bin 0 by bin 1 before the search (Model Optimizer's behaviour)")
	fs.StringVar(&c.Out, "out", "", "write the calibration table (JSON) here")
	fs.StringVar(&c.TRTCache, "trt-cache", "", "also write a TensorRT calibration cache here")
	fs.StringVar(&c.TRTVersion, "trt-version", calib.DefaultTRTVersion, "TensorRT version number in the cache header (8601 = 8.6.1)")
	fs.StringVar(&c.TRTNames, "trt-names", "", "JSON map from module names to network tensor names: key the TensorRT cache by the tensors TensorRT looks up (one line per tensor; q/k/v share one)")
	fs.BoolVar(&c.Force, "force", false, forceHelp)
	fs.StringVar(&c.Device, "device", "auto", deviceHelp+"; calibrate --model also takes cuda:all (one worker per GPU)")
}

const calibrateModelUsage = "\n\nWith --model: calibrate from text. The data (--data: text, paragraphs split at blank lines\n" +
	"and stripped of leading/trailing whitespace, or .jsonl token ids) is tokenized with BOS first and\n" +
	"cut into windows of --seq-len tokens (eval's windowing, --split calib = first half of the\n" +
	"file); the full-precision model runs over them in batches\n" +
	"and the input of every linear layer is binned under the layer's name. --shard I/N takes the\n" +
	"windows whose index is I mod N; --device cuda:all runs one worker per GPU, --workers N that\n" +
	"many CPU workers (histograms merge exactly). --rounds R recomputes every threshold after each\n" +
	"of R slices of the stream and flags tensors whose amax still moves (--tolerance); the report\n" +
	"adds coverage, clipping rates, outlier channels and warnings (--coverage-json, --plot);\n" +
	"--json prints {\"table\": ..., \"diagnostics\": ...}. See docs/CALIBRATION.md."

func registerModelCalibration(fs *pflag.FlagSet, f *autoquant.ModelCalibration) {
	fs.StringVar(&f.Model, "model", "", "calibrate from text: llama2.c .bin file or Hugging Face model directory")
	fs.StringVar(&f.Data, "data", "", "with --model: calibration text (.txt) or token ids (.jsonl)")
	fs.StringVar(&f.Tokenizer, "tokenizer", "", "with --model: tokenizer (tok*.bin or tokenizer.json); default: beside the model")
	fs.IntVar(&f.Tokens, "tokens", 65536, "with --model: tokens of the stream to use (before sharding); 0 = all")
	fs.IntVar(&f.SeqLen, "seq-len", 256, "with --model: window length in tokens")
	fs.IntVar(&f.Batch, "batch", 8, "with --model: windows per forward pass")
	fs.StringVar(&f.Split, "split", "calib", "with --model: part of the data file: calib (first half), eval (second half) or all")
	fs.IntVar(&f.Workers, "workers", 1, "with --model: CPU workers, each with its own forward passes and histograms")
	fs.BoolVar(&f.HostForward, "host-forward", false, "with --model on a GPU: run the forward pass on the CPU (F32, bit-identical to a CPU run) and only bin on the GPU, instead of the GPU model runner (F16 activations binned on the device)")
	fs.IntVar(&f.Rounds, "rounds", calibrun.DefaultRounds, "with --model: consecutive rounds of the stream for the convergence check")
	fs.Float64Var(&f.Tolerance, "tolerance", calibrun.DefaultTolerance, "with --model: relative amax change in the last round above which a tensor is unsettled")
	fs.Float64Var(&f.OutlierRatio, "outlier-ratio", calibrun.DefaultOutlierRatio, "with --model: flag channels whose absmax exceeds this multiple of the median channel absmax")
	fs.IntVar(&f.MinTokens, "min-tokens", calibrun.DefaultMinTokens, "with --model: warn when calibrating on fewer tokens")
	fs.StringVar(&f.Plot, "plot", "", "with --model: write histogram and convergence charts (PNG) into DIR")
	fs.IntVar(&f.PlotTop, "plot-top", 0, "with --plot: chart only the N most clipped tensors (0 = all)")
	fs.StringVar(&f.CoverageJSON, "coverage-json", "", "with --model: write the diagnostics (rounds, coverage, warnings) as JSON here")
}

func init() {
	var (
		o      autoquant.CalibrateOptions
		asJSON bool
	)
	register(&command{
		name:    "calibrate",
		summary: "calibrate activation thresholds (entropy/percentile/mse/max) from activation dumps, or by running the model on text",
		usage: "(--activations 'GLOB' | --model MODEL --data FILE) [flags]\n\nEach tensor name in the dumps is one calibrated tensor (F32, F16 or BF16). Files are\n" +
			"streamed one at a time in sorted order; --shard I/N takes the files whose index is I mod N,\n" +
			"and --histograms DIR saves exact histogram state for `autoq calib merge`." + calibrateModelUsage,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Activations, "activations", "", "glob of .safetensors activation dumps (quote it)")
			registerCalibOutput(fs, &o.CalibOutput)
			fs.BoolVar(&asJSON, "json", false, "print the table as JSON instead of text")
			fs.StringVar(&o.Shard, "shard", "0/1", "I/N: process files with index % N == I")
			fs.StringVar(&o.Histograms, "histograms", "", "write this shard's histogram state to DIR/histograms-I-of-N.json")
			fs.BoolVar(&o.FailOnNonFinite, "fail-on-nonfinite", false, "make NaN/Inf in any tensor an error")
			fs.BoolVar(&o.RequireConverged, "require-converged", false, "with --model: exit 1 (after the report) when thresholds have not settled over --rounds")
			fs.BoolVar(&o.ChannelAbsMax, "channel-absmax", false, "with --activations: also track per-channel absmax (reported as max/median; always on with --model)")
			registerModelCalibration(fs, &o.ModelCalibration)
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				if o.Model != "" {
					return usagef("unexpected arguments %q", args)
				}
				return usagef("unexpected arguments %q (quote the --activations glob)", args)
			}
			rep, err := autoquant.Calibrate(e.job(), o)
			if rep != nil {
				if perr := e.print(asJSON, rep); perr != nil {
					return perr
				}
			}
			return err
		},
	})
}
