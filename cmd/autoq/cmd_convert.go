package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.ConvertOptions
		asJSON bool
	)
	register(&command{
		name:    "convert llama2c",
		summary: "convert a llama2.c checkpoint into a Hugging Face Llama directory (config.json + model.safetensors)",
		usage: "FILE --out DIR [flags]\n\nFILE is a legacy float32 llama2.c .bin checkpoint. q_proj and k_proj are permuted from llama2.c's\n" +
			"interleaved RoPE pairs to Hugging Face's rotate_half layout (docs/FORMAT.md), so transformers\n" +
			"loads DIR as is. DIR is replaced atomically.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Out, "out", "", "output directory (required)")
			fs.StringVar(&o.Tokenizer, "tokenizer", "auto", "llama2.c tokenizer (tok*.bin) to write as DIR/tokenizer.json; auto: the one tok*.bin beside FILE, if exactly one; none: skip")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("expected one llama2.c FILE, got %d arguments", len(args))
			}
			o.File = args[0]
			rep, err := autoquant.ConvertLlama2C(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
