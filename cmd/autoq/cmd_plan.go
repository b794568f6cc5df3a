package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/autoq/autoq/plan"
	"github.com/spf13/pflag"
)

type planFlags struct {
	sens       string
	targetBits float64
	maxKL      float64
	overrides  []string
	metric     string
	greedy     bool
	scaleBits  int
	candidates string
	preset     string
	uniform    string
	out        string
	json       bool
}

func init() {
	f := &planFlags{}
	register(&command{
		name:    "plan",
		summary: "choose a scheme per layer from a sensitivity file under a bits-per-weight budget (mixed precision)",
		usage: "--sens sens.json (--target-bits B | --max-kl X) [--override 'GLOB=SCHEME' ...] --out plan.json\n\n" +
			"Minimises the summed predicted damage (KL by default) under an average bits-per-weight budget that\n" +
			"counts scales and zero points (bits = b + (scale bits + zero bits) / group size; full precision = 16),\n" +
			"or with --max-kl finds the cheapest plan within a damage limit. Exact dynamic programme by default,\n" +
			"--greedy for the damage-per-bit heuristic. --preset SCHEME writes the usual hand rules instead\n" +
			"(q/k/v 8-bit, o_proj 16-bit, MLP with the given int4 scheme); --uniform SCHEME one scheme everywhere.\n" +
			"The plan file is JSON: ordered glob rules, first match wins; edit it freely.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.sens, "sens", "", "sensitivity file from autoq sensitivity")
			fs.Float64Var(&f.targetBits, "target-bits", 0, "average bits per weight over the planned layers, scales counted")
			fs.Float64Var(&f.maxKL, "max-kl", 0, "instead: the cheapest plan whose summed predicted damage is at most this")
			fs.StringArrayVar(&f.overrides, "override", nil, "fix layers matching GLOB to SCHEME, e.g. '*.o_proj=w16' (repeatable)")
			fs.StringVar(&f.metric, "metric", "kl", "damage measure: kl or ppl (relative perplexity increase)")
			fs.StringVar(&f.candidates, "candidates", "", "schemes the planner may choose, comma-separated (default: every scheme in the sensitivity file, and w16)")
			fs.BoolVar(&f.greedy, "greedy", false, "greedy by damage per bit instead of the exact programme")
			fs.IntVar(&f.scaleBits, "scale-bits", 16, "bits of a stored weight scale (16: F16/BF16)")
			fs.StringVar(&f.preset, "preset", "", "write the preset plan with this int4 scheme (e.g. w4g128) instead of planning")
			fs.StringVar(&f.uniform, "uniform", "", "write a plan applying this one scheme everywhere")
			fs.StringVar(&f.out, "out", "", "plan file to write (atomically)")
			fs.BoolVar(&f.json, "json", false, "print the per-layer result as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("plan takes no arguments, got %q", args)
			}
			return runPlan(e, f)
		},
	})
}

// planRow is one layer of the printed plan.
type planRow struct {
	Layer  string  `json:"layer"`
	Params int     `json:"params"`
	Scheme string  `json:"scheme"`
	Bits   float64 `json:"bits"`
	Damage float64 `json:"predicted_damage"`
	Fixed  bool    `json:"override,omitempty"`
}

type planOutput struct {
	Plan   *plan.Plan `json:"plan"`
	Layers []planRow  `json:"layers"`
}

func runPlan(e *env, f *planFlags) error {
	var rules []plan.Rule
	for _, o := range f.overrides {
		r, err := plan.ParseOverride(o)
		if err != nil {
			return usagef("--override: %v", err)
		}
		rules = append(rules, r)
	}
	if f.preset != "" || f.uniform != "" {
		if f.preset != "" && f.uniform != "" {
			return usagef("--preset and --uniform exclude each other")
		}
		var p *plan.Plan
		name := f.preset + f.uniform
		c, err := plan.ParseChoice(name)
		if err != nil {
			return usagef("%v", err)
		}
		if f.preset != "" {
			p = plan.Preset(c, f.scaleBits)
		} else {
			p = plan.Uniform(c, f.scaleBits)
		}
		p.Rules = append(rules, p.Rules...)
		if f.out == "" {
			return usagef("--out is required")
		}
		if err := plan.Write(f.out, p); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s plan (%d rules) to %s\n", p.Source, len(p.Rules), f.out)
		return nil
	}
	if f.sens == "" {
		return usagef("--sens is required (or --preset/--uniform)")
	}
	if (f.targetBits > 0) == (f.maxKL > 0) {
		return usagef("give exactly one of --target-bits and --max-kl")
	}
	if f.metric != "kl" && f.metric != "ppl" {
		return usagef("--metric must be kl or ppl, not %q", f.metric)
	}
	var cands []plan.Choice
	if f.candidates != "" {
		for _, c := range strings.Split(f.candidates, ",") {
			ch, err := plan.ParseChoice(strings.TrimSpace(c))
			if err != nil {
				return usagef("--candidates: %v", err)
			}
			cands = append(cands, ch)
		}
	}
	s, err := plan.ReadSensitivity(f.sens)
	if err != nil {
		return err
	}
	p, res, err := plan.Solve(s, plan.Options{TargetBits: f.targetBits, MaxDamage: f.maxKL, Overrides: rules, Candidates: cands,
		Metric: f.metric, Greedy: f.greedy, ScaleBits: f.scaleBits})
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := plan.Write(f.out, p); err != nil {
			return err
		}
	}
	out := planOutput{Plan: p}
	for i, l := range res.Layers {
		out.Layers = append(out.Layers, planRow{Layer: l.Name, Params: l.Rows * l.Cols, Scheme: res.Choices[i].String(),
			Bits: res.Choices[i].Bits(l.Rows, l.Cols, f.scaleBits), Damage: res.Damage[i], Fixed: res.Fixed[i]})
	}
	if len(res.Unmeasured) > 0 {
		fmt.Fprintf(e.stderr, "warning: overrides set schemes the sensitivity file did not measure (counted as no damage): %s\n", strings.Join(res.Unmeasured, ", "))
	}
	if f.json {
		return writeReportJSON(e.stdout, out)
	}
	printPlan(e.stdout, out, f.out)
	return nil
}

func printPlan(w io.Writer, out planOutput, file string) {
	fmt.Fprintf(w, "%-36s %10s %-10s %7s %12s\n", "layer", "params", "scheme", "bits", "pred. "+out.Plan.Metric)
	counts := map[string]int{}
	for _, r := range out.Layers {
		mark := ""
		if r.Fixed {
			mark = " (override)"
		}
		fmt.Fprintf(w, "%-36s %10d %-10s %7.3f %12.6f%s\n", r.Layer, r.Params, r.Scheme, r.Bits, r.Damage, mark)
		counts[r.Scheme]++
	}
	var parts []string
	for _, s := range []string{"w16", "w8c", "w8ca8", "w8ca8s"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", s, counts[s]))
			delete(counts, s)
		}
	}
	rest := make([]string, 0, len(counts))
	for s := range counts {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		parts = append(parts, fmt.Sprintf("%s x%d", s, counts[s]))
	}
	fmt.Fprintf(w, "\naverage %.3f bits/weight, predicted %s %.6f; %s\n", out.Plan.AvgBits, out.Plan.Metric, out.Plan.PredictedDamage, strings.Join(parts, ", "))
	if file != "" {
		fmt.Fprintf(w, "plan written to %s\n", file)
	}
}
