package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

// evalUsage is the synopsis and description `autoq eval --help` prints.
const evalUsage = "--model PATH --data FILE [--scheme w8,w8a8,w4g32a,...] [--quantized DIR] [--gguf FILE,...] [flags]\n\n" +
	"Windowing: paragraphs (blank-line separated) are documents, stripped of leading/trailing\n" +
	"whitespace (as llama2.c's pretokenizer does) and tokenized with BOS first; they are\n" +
	"concatenated and cut into non-overlapping windows of --seq-len tokens, each run from position 0;\n" +
	"every next-token target except BOS is scored. --split eval (the default) uses the documents that\n" +
	"start in the second half of the file, calib the first half. .jsonl data holds token ids per line.\n" +
	"Schemes: w8 (int8 per channel), w8t (per tensor), w4g32 (int4 groups of 32), trailing a =\n" +
	"asymmetric (w4g32a), a8 = int8 activations per token (w8a8), a8s = static per-tensor activation\n" +
	"scales calibrated with --act-calib on the calib split (w8a8s); +gptq rounds the weights with GPTQ\n" +
	"(Hessians from --calib-tokens of the calib split: w4g32a+gptq).\n" +
	"--gguf evaluates GGUF files of the model with exactly their stored weights and, when llama.cpp is\n" +
	"installed (scripts/llamacpp/install.sh), has llama.cpp score the same windows: both perplexities\n" +
	"side by side (docs/GGUF.md)."

func init() {
	var (
		o      autoquant.EvalOptions
		asJSON bool
	)
	register(&command{
		name:    "eval",
		summary: "perplexity of a model, and of fake-quantized variants against full precision (NLL, KL, top-1)",
		usage:   evalUsage,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Model, "model", "", modelHelp)
			fs.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer (tok*.bin or tokenizer.json); default: beside the model")
			fs.StringVar(&o.Data, "data", "", "text file (paragraphs) or .jsonl of token ids (required)")
			fs.StringSliceVar(&o.Schemes, "scheme", nil, "fake-quantization schemes to compare with full precision (comma separated)")
			fs.StringVar(&o.Quantized, "quantized", "", "also evaluate a quantized checkpoint directory (autoq quantize --out, or a compressed-tensors export)")
			fs.StringVar(&o.Search, "search", "max", "weight scale search for --scheme: max, percentile or mse")
			fs.IntVar(&o.Tokens, "tokens", 0, "tokens to evaluate (0: the whole split)")
			fs.IntVar(&o.SeqLen, "seq-len", 256, "window length in tokens")
			fs.IntVar(&o.Batch, "batch", 4, batchHelp)
			fs.StringVar(&o.Split, "split", "eval", "part of the data file: eval (second half), calib (first half) or all")
			fs.IntVar(&o.Skip, "skip-tokens", 0, "tokens to skip at the start of the split")
			fs.StringVar(&o.ActCalib, "act-calib", defaultCalibrator, "calibrator for static activation scales (a8s schemes): entropy, percentile, mse or max")
			fs.IntVar(&o.CalibTokens, "calib-tokens", 32768, "tokens of the calib split used to calibrate static activation scales")
			fs.StringVar(&o.CalibTable, "calib", "", "calibration table (autoq calibrate --out) giving static activation amax per linear layer, instead of --act-calib")
			fs.StringSliceVar(&o.GGUF, "gguf", nil, "also evaluate GGUF files of the model (autoq export --format gguf), on the CPU")
			fs.StringVar(&o.LlamaCpp, "llamacpp", "auto", "score the --gguf files with llama.cpp too: auto (when installed), on or off")
			fs.BoolVar(&asJSON, "json", false, "print the results as JSON")
			registerRotate(fs, &o.Rotate)
			fs.StringVar(&o.Device, "device", "auto", "auto (a GPU when there is one), cpu, cuda or cuda:N; on a GPU: run the reference in F16 and the schemes on the GPU kernels (per-token w8a8 and weight-only schemes)")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected arguments %q", args)
			}
			rep, err := autoquant.Eval(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
