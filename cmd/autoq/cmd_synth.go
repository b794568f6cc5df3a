package main

import (
	"strings"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/synth"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.SynthOptions
		asJSON bool
	)
	register(&command{
		name:    "synth",
		summary: "write a deterministic synthetic checkpoint at the shape of a real Llama model (for speed and memory runs)",
		usage: "--shape NAME --out DIR [flags]\n\nDIR gets sharded safetensors (model.safetensors.index.json when more than one shard), config.json\n" +
			"with the model's hyper-parameters and a synthetic tokenizer.json of its vocabulary size. Weights are\n" +
			"Student-t(5) with std 1/sqrt(fan_in); a few hidden dimensions carry activation outliers (20x\n" +
			"layer-norm weights). The bits depend only on shape, layers, dtype and seed. DIR is built in a\n" +
			"temporary directory and renamed; an existing non-empty DIR is refused without --force.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Shape, "shape", "", "architecture: "+strings.Join(synth.ShapeNames(), ", "))
			fs.IntVar(&o.Layers, "layers", 0, "layers to write (default: all of the shape's)")
			fs.StringVar(&o.DType, "dtype", "bf16", "bf16 or f16")
			fs.Uint64Var(&o.Seed, "seed", 0, "random seed")
			fs.StringVar(&o.ShardSize, "shard-size", "2GB", "largest shard (tensor bytes; 500MB, 2GB, 1GiB); a larger tensor gets its own")
			fs.IntVar(&o.Workers, "workers", 0, "goroutines generating values (default: GOMAXPROCS; the bits do not depend on it)")
			fs.StringVar(&o.Out, "out", "", "output directory")
			fs.BoolVar(&o.Force, "force", false, "replace an existing non-empty --out")
			fs.BoolVar(&o.DryRun, "dry-run", false, "print the layout (tensors, shards, bytes) without writing")
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("synth takes no arguments, got %d", len(args))
			}
			rep, err := autoquant.Synth(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
