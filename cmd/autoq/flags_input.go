package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/calib"
	"github.com/spf13/pflag"
)

// inputFlag names the model/data flags a command takes (sensitivity, export and run take
// different subsets: a command shows only the flags it uses).
type inputFlag uint16

const (
	flagSensTokens inputFlag = 1 << iota
	flagEvalTokens
	flagCalibTable
)

// registerInput declares the model and data flags of in on fs.
func registerInput(fs *pflag.FlagSet, in *autoquant.Input, modelDesc string, which inputFlag) {
	fs.StringVar(&in.Model, "model", "", modelDesc)
	fs.StringVar(&in.Tokenizer, "tokenizer", "", "tokenizer (default: tokenizer.json in a model directory, tok<vocab>.bin beside a llama2.c file)")
	fs.StringVar(&in.Data, "data", "", "text file (blank-line separated documents; first half calibrates, second half evaluates) or .jsonl of token ids")
	fs.IntVar(&in.SeqLen, "seq-len", 256, seqLenHelp)
	fs.IntVar(&in.CalibTokens, "calib-tokens", 8192, "calibration tokens (activation thresholds, GPTQ Hessians)")
	fs.IntVar(&in.SensTokens, "sens-tokens", 2048, "sensitivity tokens (calibration split, after the calibration tokens)")
	if which&flagSensTokens == 0 {
		unused(fs, "sens-tokens")
	}
	fs.IntVar(&in.EvalTokens, "eval-tokens", 0, "evaluation tokens for the accuracy gate (0: the whole evaluation split)")
	if which&flagEvalTokens == 0 {
		unused(fs, "eval-tokens")
	}
	fs.StringVar(&in.CalibMethod, "calib-method", defaultCalibrator, "activation calibrator for static W8A8: entropy, percentile, mse or max")
	fs.StringVar(&in.Int4, "rounding", "gptq", "rounding of weights below 8 bits (w3..w7; a scheme's +rtn/+gptq suffix overrides it): gptq (error-compensating, needs calibration) or rtn (round to nearest, MSE clipping)")
	fs.StringVar(&in.Int4, "int4", "gptq", "old name of --rounding")
	fs.MarkDeprecated("int4", "use --rounding (it applies to every width below 8 bits)")
	fs.IntVar(&in.Batch, "batch", 8, batchHelp)
	fs.StringVar(&in.Device, "device", "auto", deviceHelp)
	if which&flagCalibTable != 0 {
		fs.StringVar(&in.CalibTable, "calib-table", "", "calibration table (JSON from autoq calibrate): static activation thresholds instead of calibrating here")
		fs.StringVar(&in.CalibTable, "calib", "", "same as --calib-table")
		fs.MarkHidden("calib")
	}
}

// registerTarget declares --target: what must load the export.
func registerTarget(fs *pflag.FlagSet, t *string, def, note string) {
	fs.StringVar(t, "target", def, "what must load the export"+note+": vllm, transformers, tensorrt, gguf (llama.cpp's block formats, one GGUF file) or any (vLLM's rules with warnings only); "+
		"the planner offers only schemes the target loads and plans its fused layers (q/k/v, gate/up) as one (docs/EXPORT.md)")
}

// registerTRT declares the TensorRT cache flags of export and run.
func registerTRT(fs *pflag.FlagSet, o *autoquant.TRTOptions) {
	fs.StringVar(&o.TRTNames, "trt-names", "", "JSON map from module names to network tensor names: key the TensorRT cache by the tensors TensorRT looks up (one line per tensor)")
	fs.StringVar(&o.TRTVersion, "trt-version", calib.DefaultTRTVersion, "TensorRT version number in the cache header (8601 = 8.6.1)")
}

// unused hides a flag the command once inherited without using it; it is still accepted
// (with a warning) for one release.
func unused(fs *pflag.FlagSet, name string) {
	fs.MarkDeprecated(name, "this command does not use it (it will be removed)")
}

// deviceHelp is the one description of --device (every job that runs a model or
// quantizes takes it, default auto).
const deviceHelp = "auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"

// modelHelp, seqLenHelp and batchHelp are the descriptions of --model, --seq-len and --batch
// that several commands share.
const (
	modelHelp  = "llama2.c .bin file or Hugging Face directory (required)"
	seqLenHelp = "tokens per window"
	batchHelp  = "windows per forward pass"
)

// defaultCalibrator is the default of every activation calibrator flag (calibrate's --method,
// --calib-method, eval's --act-calib): entropy, as Model Optimizer's.
var defaultCalibrator = calib.MethodEntropy.String()

// forceHelp is the one description of --force (every command that writes takes it).
const forceHelp = "replace an existing output: a file, or a directory that a previous autoq run of the same kind wrote (never anything else)"

// registerRotate declares --rotate and --rotate-seed.
func registerRotate(fs *pflag.FlagSet, r *autoquant.Rotation) {
	fs.StringVar(&r.Kind, "rotate", "none", autoquant.RotateHelp)
	fs.Uint64Var(&r.Seed, "rotate-seed", 0, "seed of --rotate's random signs / matrices")
}
