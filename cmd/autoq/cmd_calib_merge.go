package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.CalibMergeOptions
		asJSON bool
	)
	register(&command{
		name:    "calib merge",
		summary: "merge shard histogram states (from calibrate --histograms) into one calibration table",
		usage: "SHARD... [flags]\n\nEach SHARD is a histogram state file, or a directory whose histograms-*.json files are all\n" +
			"taken. Merging is exact: the table equals that of one unsharded run, bit for bit. The shards\n" +
			"must be the whole run: every I of N once, all made with the same settings (model, data,\n" +
			"--seq-len, --tokens, ...); anything else is refused.",
		flags: func(fs *pflag.FlagSet) {
			registerCalibOutput(fs, &o.CalibOutput)
			fs.BoolVar(&asJSON, "json", false, "print the table as JSON instead of text")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			o.Shards = args
			rep, err := autoquant.CalibMerge(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
