package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/quant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o         autoquant.QuantizeOptions
		bits      int
		gran      string
		groupSize int
		sym, asym bool
		asJSON    bool
	)
	register(&command{
		name:    "quantize",
		summary: "weight-only quantization of a checkpoint's 2-D weights, with a per-tensor error report",
		usage: "[PATH] [flags]\n\nPATH is a .safetensors file, a Hugging Face checkpoint directory (single or sharded), or a llama2.c\n" +
			".bin file. Without PATH, the built-in deterministic synthetic Llama checkpoint (the one autoq run\n" +
			"uses) is quantized. Every 2-D weight except embeddings and lm_head is quantized unless --include says\n" +
			"otherwise; norms and other tensors are copied. Output layout: docs/FORMAT.md.",
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&bits, "bits", 8, "bits per weight: 3 to 8 (8 and 4 are the widths with integer GPU kernels)")
			fs.StringVar(&gran, "granularity", "channel", "scale granularity: channel (per output row), group, or tensor")
			fs.IntVar(&groupSize, "group-size", 128, "inputs per scale group (--granularity group)")
			fs.BoolVar(&sym, "sym", false, "symmetric quantization, no zero point (the default)")
			fs.BoolVar(&asym, "asym", false, "asymmetric quantization with a zero point")
			fs.StringVar(&o.Search, "search", "max", "scale search: max, percentile, mse, or act-mse (activation-aware: minimises the layer's output error on --data)")
			fs.Float64Var(&o.Percentile, "percentile", quant.DefaultPercentile, "percentile for --search percentile")
			fs.StringArrayVar(&o.Include, "include", nil, "quantize only 2-D weights whose name matches this glob (repeatable; replaces the default selection)")
			fs.StringArrayVar(&o.Exclude, "exclude", nil, "keep weights matching this glob in full precision (repeatable)")
			fs.StringVar(&o.Method, "method", "rtn", "how values are rounded: rtn (round to nearest) or gptq (error compensation with the layer's input Hessian, needs --data)")
			fs.StringVar(&o.Data, "data", "", "calibration text (or .jsonl token ids) for --method gptq and --search act-mse; its first half is used")
			fs.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer for --data (tok*.bin or tokenizer.json); default: beside the model")
			fs.IntVar(&o.CalibTokens, "calib-tokens", 32768, "calibration tokens for --method gptq / --search act-mse")
			fs.IntVar(&o.SeqLen, "seq-len", 256, "calibration window length in tokens")
			fs.BoolVar(&o.ActOrder, "act-order", true, "GPTQ: visit columns by decreasing Hessian diagonal (the output keeps the original order)")
			fs.StringVar(&o.ActOrderGroups, "act-order-groups", "static", "GPTQ with --act-order: static (contiguous scale groups, no g_idx: every kernel and export) or dynamic (groups of consecutive columns in act order, stored with a g_idx; compressed-tensors actorder \"group\")")
			fs.StringVar(&o.Sequential, "sequential", "off", "GPTQ / act-mse Hessians: off (from the full-precision model), block (each block's inputs from the already-quantized blocks) or layer (also within a block)")
			fs.Float64Var(&o.Damp, "damp", 0.01, "GPTQ: damping, as a fraction of the mean Hessian diagonal")
			registerRotate(fs, &o.Rotate)
			fs.StringVar(&o.Device, "device", "auto", deviceHelp)
			fs.StringVar(&o.Out, "out", "", "output checkpoint directory (replaced atomically); omit for the report only")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) > 1 {
				return usagef("expected at most one PATH, got %d arguments", len(args))
			}
			o.Path = ""
			if len(args) == 1 {
				o.Path = args[0]
			}
			if sym && asym {
				return usagef("--sym and --asym exclude each other")
			}
			g, err := quant.ParseGranularity(gran)
			if err != nil {
				return usagef("--granularity: %v", err)
			}
			o.Scheme = quant.Scheme{Bits: bits, Symmetric: !asym, Granularity: g}
			if g == quant.PerGroup {
				o.Scheme.GroupSize = groupSize
			} else if fs.Changed("group-size") {
				return usagef("--group-size needs --granularity group")
			}
			if o.Search != "percentile" && fs.Changed("percentile") {
				return usagef("--percentile needs --search percentile")
			}
			rep, err := autoquant.Quantize(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
