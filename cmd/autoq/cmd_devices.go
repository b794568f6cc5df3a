package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var asJSON bool
	register(&command{
		name:    "devices",
		summary: "list the CUDA devices autoq can use, or say why it runs on the CPU only",
		usage:   "[flags]",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("devices takes no arguments, got %d", len(args))
			}
			return e.print(asJSON, autoquant.Devices())
		},
	})
}
