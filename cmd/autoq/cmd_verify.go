package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o        autoquant.VerifyOptions
		jsonFile string
	)
	register(&command{
		name:    "verify",
		noArgs:  true,
		summary: "accuracy gate: compare a quantized model with its baseline; exit 0 within tolerance, 1 otherwise",
		usage: "--baseline PATH --candidate PATH --data FILE [--max-ppl-increase 1%] [--gate-kl X] [--json FILE]\n\n" +
			"Both models run on the same tokens of the data file's evaluation split (its second half). Prints\n" +
			"both perplexities, the relative increase, the mean KL(baseline || candidate) of the next-token\n" +
			"distribution and the top-1 agreement. PATH: llama2.c .bin, Hugging Face directory, or an\n" +
			"`autoq export`/`autoq run` compressed-tensors directory. Exit codes: 0 pass, 1 fail or error, 2 usage.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Baseline, "baseline", "", "full-precision model (required)")
			fs.StringVar(&o.Candidate, "candidate", "", "quantized model (required)")
			fs.StringVar(&o.Data, "data", "", "text file or .jsonl of token ids (required)")
			fs.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer (default: found beside the baseline model)")
			fs.StringVar(&o.MaxPPLIncrease, "max-ppl-increase", "1%", "largest allowed relative perplexity increase (\"1%\" or 0.01); \"off\" disables")
			fs.Float64Var(&o.GateKL, "gate-kl", 0, "largest allowed mean KL in nats per token (0: not checked)")
			fs.Float64Var(&o.GateKL, "max-kl", 0, "old name of --gate-kl")
			fs.MarkDeprecated("max-kl", "use --gate-kl (the accuracy gate's KL limit, as in autoq run)")
			fs.IntVar(&o.SeqLen, "seq-len", 256, seqLenHelp)
			fs.IntVar(&o.Tokens, "tokens", 0, "evaluation tokens (0: the whole evaluation split)")
			fs.IntVar(&o.Batch, "batch", 8, batchHelp)
			fs.StringVar(&o.Device, "device", "auto", deviceHelp)
			fs.StringVar(&jsonFile, "json", "", "also write the report as JSON to `FILE` (\"-\": stdout instead of the table)")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			o.ReportFile = ""
			if jsonFile != "-" {
				o.ReportFile = jsonFile
			}
			rep, err := autoquant.Verify(e.job(), o)
			if rep != nil {
				if perr := e.print(jsonFile == "-", rep); perr != nil {
					return perr
				}
			}
			return err
		},
	})
}
