package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.RunOptions
		asJSON bool
	)
	register(&command{
		name:    "run",
		noArgs:  true,
		summary: "the whole AutoQuant pipeline: calibrate, sensitivity, plan, quantize, verify, export",
		usage: "[--model PATH --data FILE] [--target-bits 5.3 | --kl-budget X] [--out DIR] [flags]\n\n" +
			"Without --model it runs on a built-in deterministic synthetic Llama (activation outliers included)\n" +
			"with synthetic data, so a fresh clone shows the whole job with no downloads. Stages: calibrate\n" +
			"(activation thresholds, GPTQ Hessians) on the first half of the data, per-layer sensitivity,\n" +
			"mixed-precision plan under the bit budget, quantization, compressed-tensors export to a staging\n" +
			"directory, and the accuracy gate on the second half of the data, evaluated on the export read\n" +
			"back. Only a passing export replaces --out (--force publishes anyway); a failing gate exits 1.\n" +
			"The export holds autoq_plan.json, autoq_sensitivity.json, autoq_report.json and a TensorRT cache.",
		flags: func(fs *pflag.FlagSet) {
			registerInput(fs, &o.Input, "llama2.c .bin file or Hugging Face directory (default: the built-in synthetic model)", flagSensTokens|flagEvalTokens)
			fs.Float64Var(&o.TargetBits, "target-bits", 5.3, "average bits per weight over the linear layers, scales and zero points counted")
			fs.Float64Var(&o.KLBudget, "kl-budget", 0, "instead of --target-bits: the cheapest plan with summed predicted KL at most this")
			fs.Float64Var(&o.KLBudget, "max-kl", 0, "old name of --kl-budget")
			fs.MarkDeprecated("max-kl", "use --kl-budget (the planner's budget; the gate's KL limit is --gate-kl)")
			fs.StringVar(&o.Schemes, "schemes", "", "candidate schemes for sensitivity and planning (default: w4g128,w4g128a,w4g64a,w8; w4g32,w4g32a,w4g16a,w8 below dim 1024)")
			fs.StringArrayVar(&o.Overrides, "override", nil, "fix layers matching GLOB to SCHEME, e.g. '*.o_proj=w16' (repeatable)")
			fs.StringVar(&o.MaxPPLIncrease, "max-ppl-increase", "1%", "accuracy gate: largest relative perplexity increase (\"off\" disables)")
			fs.Float64Var(&o.GateKL, "gate-kl", 0, "accuracy gate: largest mean KL (0: not checked)")
			fs.StringVar(&o.Out, "out", "autoq-out", "export directory")
			registerTarget(fs, &o.Target, autoquant.DefaultTarget, "")
			registerTRT(fs, &o.TRTOptions)
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.BoolVar(&o.IgnoreGate, "ignore-gate", false, "publish the export even when the gate fails (still exits 1)")
			fs.BoolVar(&o.RequireConverged, "require-converged", false, "calibrate in rounds and exit 1 when activation thresholds have not settled")
			fs.StringVar(&o.Sensitivity, "sensitivity", "exact", "exact (each layer's damage measured to the logits from its block's cached input), proxy (the relative error its round-to-nearest candidates cause at the block's output on 512 sensitivity tokens: no forward to the logits, GPTQ once on the planned scheme; plan with --target-bits) or both (exact, and the proxy's rank agreement reported)")
			fs.StringVar(&o.MaxDeviceMem, "max-device-mem", "auto", "memory budget of the computing device for block weights and boundary activations (16GB, 512MiB; auto: 80% of a GPU's memory; on the CPU activations unbounded); activations beyond it are spilled")
			fs.StringVar(&o.WorkDir, "work-dir", "", "where each stage's result is kept as it completes (default: --out with .autoq-work appended); removed after publishing")
			fs.BoolVar(&o.Resume, "resume", false, "continue an interrupted run from its work directory (stages whose inputs and options are unchanged are kept)")
			fs.BoolVar(&o.KeepWork, "keep-work", false, "keep the work directory after publishing")
			fs.StringVar(&o.Sequential, "sequential", "off", "GPTQ Hessians: off (from the full-precision model), block (each block's inputs from the already-quantized blocks) or layer (also within a block; runs in memory)")
			fs.StringVar(&o.ActOrderGroups, "act-order-groups", "static", "GPTQ act-order scale groups: static (contiguous, no g_idx) or dynamic (in act order, weight_g_idx in the export)")
			registerRotate(fs, &o.Rotate)
			fs.BoolVar(&asJSON, "json", false, "print the closing report as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if (fs.Changed("kl-budget") || fs.Changed("max-kl")) && !fs.Changed("target-bits") {
				o.TargetBits = 0
			}
			rep, err := autoquant.Run(e.job(), o)
			if rep != nil {
				if perr := e.print(asJSON, rep); perr != nil {
					return perr
				}
			}
			return err
		},
	})
}
