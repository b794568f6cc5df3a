package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var asJSON bool
	register(&command{
		name:    "inspect",
		summary: "list a checkpoint's tensors (name, dtype, shape, bytes) and totals",
		usage: "PATH [flags]\n\nPATH is a .safetensors file, a Hugging Face checkpoint directory (single file or sharded), an\n" +
			"index .json, or a llama2.c .bin file (shown with the Hugging Face names autoq convert gives).",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("expected one PATH, got %d arguments", len(args))
			}
			rep, err := autoquant.Inspect(args[0])
			return e.report(asJSON, rep, err)
		},
	})
}
