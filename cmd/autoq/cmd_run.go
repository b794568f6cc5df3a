package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/pipeline"
	"github.com/autoq/autoq/plan"
	"github.com/spf13/pflag"
)

type runFlags struct {
	in         aqInputFlags
	targetBits float64
	maxKL      float64
	schemes    string
	overrides  []string
	maxPPL     string
	gateKL     float64
	out        string
	force      bool
	json       bool
}

func init() {
	f := &runFlags{}
	register(&command{
		name:    "run",
		summary: "the whole AutoQuant pipeline: calibrate, sensitivity, plan, quantize, verify, export",
		usage: "[--model PATH --data FILE] [--target-bits 5.3 | --max-kl X] [--out DIR] [flags]\n\n" +
			"Without --model it runs on a built-in deterministic synthetic Llama (activation outliers included)\n" +
			"with synthetic data, so a fresh clone shows the whole job with no downloads. Stages: calibrate\n" +
			"(activation thresholds, GPTQ Hessians) on the first half of the data, per-layer sensitivity,\n" +
			"mixed-precision plan under the bit budget, quantization, compressed-tensors export to a staging\n" +
			"directory, and the accuracy gate on the second half of the data, evaluated on the export read\n" +
			"back. Only a passing export replaces --out (--force publishes anyway); a failing gate exits 1.\n" +
			"The export holds autoq_plan.json, autoq_sensitivity.json, autoq_report.json and a TensorRT cache.",
		flags: func(fs *pflag.FlagSet) {
			f.in.register(fs, "llama2.c .bin file or Hugging Face directory (default: the built-in synthetic model)")
			fs.Float64Var(&f.targetBits, "target-bits", 5.3, "average bits per weight over the linear layers, scales and zero points counted")
			fs.Float64Var(&f.maxKL, "max-kl", 0, "instead of --target-bits: the cheapest plan with summed predicted KL at most this")
			fs.StringVar(&f.schemes, "schemes", "", "candidate schemes for sensitivity and planning (default: w4g128,w4g128a,w4g64a,w8; w4g32,w4g32a,w4g16a,w8 below dim 1024)")
			fs.StringArrayVar(&f.overrides, "override", nil, "fix layers matching GLOB to SCHEME, e.g. '*.o_proj=w16' (repeatable)")
			fs.StringVar(&f.maxPPL, "max-ppl-increase", "1%", "accuracy gate: largest relative perplexity increase (\"off\" disables)")
			fs.Float64Var(&f.gateKL, "gate-kl", 0, "accuracy gate: largest mean KL (0: not checked)")
			fs.StringVar(&f.out, "out", "autoq-out", "export directory")
			fs.BoolVar(&f.force, "force", false, "publish the export even when the gate fails (still exits 1)")
			fs.BoolVar(&f.json, "json", false, "print the closing report as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("run takes no arguments, got %q", args)
			}
			if fs.Changed("max-kl") && !fs.Changed("target-bits") {
				f.targetBits = 0
			}
			return runRun(e, f)
		},
	})
}

func runRun(e *env, f *runFlags) error {
	if (f.targetBits > 0) == (f.maxKL > 0) {
		return usagef("give exactly one of --target-bits and --max-kl")
	}
	maxPPL, err := parsePercent(f.maxPPL)
	if err != nil {
		return usagef("--max-ppl-increase: %v", err)
	}
	var schemes []plan.Choice
	if f.schemes != "" {
		if schemes, err = parseChoices(f.schemes); err != nil {
			return usagef("--schemes: %v", err)
		}
	}
	var rules []plan.Rule
	for _, o := range f.overrides {
		r, err := plan.ParseOverride(o)
		if err != nil {
			return usagef("--override: %v", err)
		}
		rules = append(rules, r)
	}
	meth, err := calib.ParseMethod(f.in.calibMethod)
	if err != nil {
		return usagef("--calib-method: %v", err)
	}
	src, d, err := f.in.open(true)
	if err != nil {
		return err
	}
	if src.Path == "" {
		fmt.Fprintf(e.stderr, "no --model: using the built-in synthetic Llama (%d layers, dim %d, vocab %d) and synthetic data\n",
			src.Cfg.Layers, src.Cfg.Dim, src.Cfg.Vocab)
	}
	rep, runErr := pipeline.Run(pipeline.RunOptions{Src: src, Data: d, Out: f.out, TargetBits: f.targetBits, MaxKL: f.maxKL,
		Schemes: schemes, Overrides: rules, Int4Method: f.in.int4, Calib: meth, Batch: f.in.batch, BOS: f.in.bos(src),
		Gate: pipeline.Gate{MaxPPLIncrease: maxPPL, MaxKL: f.gateKL}, Force: f.force, Log: e.stderr, Bars: e.stderr})
	if rep == nil {
		return runErr
	}
	if f.json {
		if err := writeReportJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printRunReport(e.stdout, rep)
	}
	if runErr != nil {
		return runErr
	}
	if !rep.Verify.Pass {
		return gateError{rep.Verify.Failures}
	}
	return nil
}

func printRunReport(w io.Writer, r *pipeline.RunReport) {
	v := r.Verify
	fmt.Fprintf(w, "\nAutoQuant report for %s\n", r.Model)
	counts := map[string]int{}
	for _, s := range r.Layers {
		counts[s]++
	}
	var parts []string
	for s, n := range counts {
		parts = append(parts, fmt.Sprintf("%s x%d", s, n))
	}
	sort.Strings(parts)
	fmt.Fprintf(w, "  plan          %.3f bits/weight on average (%s)\n", r.AvgBits, strings.Join(parts, ", "))
	fmt.Fprintf(w, "  size          %s -> %s (%.2fx smaller)\n", humanBytes(r.SizeBefore), humanBytes(r.SizeAfter), float64(r.SizeBefore)/float64(max(r.SizeAfter, 1)))
	fmt.Fprintf(w, "  perplexity    %.4f -> %.4f (%+.3f%%) on %d held-out tokens\n", v.BaselinePPL, v.CandidatePPL, 100*v.PPLIncrease, v.Tokens)
	fmt.Fprintf(w, "  KL, top-1     %.6f nats/token, %.2f%% agreement\n", v.KL, 100*v.Top1)
	fmt.Fprintf(w, "  latency       prefill of 128 tokens (CPU, median of 5): full precision %.2f ms, quantized %.2f ms (%.2fx;\n"+
		"                %d of %d linear layers on the integer reference kernels, the rest fake-quantized)\n",
		r.FPLatencyMs, r.KernelLatencyMs, r.FPLatencyMs/max(r.KernelLatencyMs, 1e-9), r.KernelLayers, len(r.Layers))
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL (" + strings.Join(v.Failures, "; ") + ")"
	}
	fmt.Fprintf(w, "  gate          %s\n", verdict)
	if r.Exported {
		fmt.Fprintf(w, "  export        %s (compressed-tensors; plan, sensitivity and report inside)\n", r.Out)
	} else {
		fmt.Fprintf(w, "  export        not published: %s left unchanged\n", r.Out)
	}
}
