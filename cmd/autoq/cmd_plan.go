package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

// planUsage is the synopsis and description `autoq plan --help` prints.
const planUsage = "--sens sens.json (--target-bits B | --kl-budget X) [--override 'GLOB=SCHEME' ...] --out plan.json\n\n" +
	"Minimises the summed predicted damage (KL by default) under an average bits-per-weight budget that\n" +
	"counts scales and zero points (bits = b + (scale bits + zero bits) / group size; full precision = 16),\n" +
	"or with --kl-budget finds the cheapest plan within a damage limit. Exact dynamic programme by default,\n" +
	"--greedy for the damage-per-bit heuristic. --preset SCHEME writes the usual hand rules instead\n" +
	"(q/k/v 8-bit, o_proj 16-bit, MLP with the given int4 scheme); --uniform SCHEME one scheme everywhere.\n" +
	"The plan file is JSON: ordered glob rules, first match wins; edit it freely."

func init() {
	var (
		o      autoquant.PlanOptions
		asJSON bool
	)
	register(&command{
		name:    "plan",
		noArgs:  true,
		summary: "choose a scheme per layer from a sensitivity file under a bits-per-weight budget (mixed precision)",
		usage:   planUsage,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Sens, "sens", "", "sensitivity file from autoq sensitivity")
			fs.Float64Var(&o.TargetBits, "target-bits", 0, "average bits per weight over the planned layers, scales counted")
			fs.Float64Var(&o.KLBudget, "kl-budget", 0, "instead: the cheapest plan whose summed predicted damage is at most this")
			fs.Float64Var(&o.KLBudget, "max-kl", 0, "old name of --kl-budget")
			fs.MarkDeprecated("max-kl", "use --kl-budget")
			fs.StringArrayVar(&o.Overrides, "override", nil, "fix layers matching GLOB to SCHEME, e.g. '*.o_proj=w16' (repeatable)")
			fs.StringVar(&o.Metric, "metric", "kl", "damage measure: kl or ppl (relative perplexity increase)")
			fs.StringVar(&o.Candidates, "candidates", "", "schemes the planner may choose, comma-separated (default: every scheme in the sensitivity file, and w16)")
			fs.BoolVar(&o.Greedy, "greedy", false, "greedy by damage per bit instead of the exact programme")
			fs.IntVar(&o.ScaleBits, "scale-bits", 16, "bits of a stored weight scale (16: F16/BF16)")
			fs.StringVar(&o.Preset, "preset", "", "write the preset plan with this int4 scheme (e.g. w4g128) instead of planning")
			fs.StringVar(&o.Uniform, "uniform", "", "write a plan applying this one scheme everywhere")
			registerTarget(fs, &o.Target, autoquant.DefaultTarget, "")
			fs.StringVar(&o.Out, "out", "", "plan file to write (atomically)")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.BoolVar(&asJSON, "json", false, "print the per-layer result as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			rep, err := autoquant.Plan(e.job(), o)
			if err != nil {
				return err
			}
			return e.print(asJSON && rep.Layers != nil, rep)
		},
	})
}
