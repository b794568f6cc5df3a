package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.SensitivityOptions
		asJSON bool
	)
	register(&command{
		name:    "sensitivity",
		noArgs:  true,
		summary: "per-layer sensitivity: quantize one layer at a time and measure KL and perplexity change",
		usage: "--model PATH --data FILE [--calib-table calib.json] [--schemes w4g128,w8,w8a8s] --out sens.json [--json] [--plot PNG]\n\n" +
			"Each (layer, scheme) is quantized alone exactly as it would be exported and run over --sens-tokens\n" +
			"held-out tokens; the full-precision logits are computed once and reused, so the cost is one forward\n" +
			"pass of the budget per (layer, scheme). Prints the table sorted by damage (KL, nats per token).",
		flags: func(fs *pflag.FlagSet) {
			registerInput(fs, &o.Input, modelHelp, flagSensTokens|flagCalibTable)
			fs.StringVar(&o.Schemes, "schemes", "w4g128,w8,w8a8s", "comma-separated candidate schemes (w8a8: dynamic per-token activations, w8a8s: static)")
			fs.StringVar(&o.Out, "out", "", "sensitivity file to write (JSON, for autoq plan)")
			fs.BoolVar(&asJSON, "json", false, "print the sensitivity file to stdout instead of the table")
			fs.StringVar(&o.Plot, "plot", "", "also draw damage per layer and scheme into a PNG `FILE`")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			rep, err := autoquant.Sensitivity(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
