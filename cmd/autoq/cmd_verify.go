package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/pipeline"
	"github.com/autoq/autoq/tokenizer"
	"github.com/spf13/pflag"
)

type verifyFlags struct {
	baseline, candidate string
	data, tokenizer     string
	maxPPL              string
	maxKL               float64
	seqLen, tokens      int
	batch               int
	jsonFile            string
}

func init() {
	f := &verifyFlags{}
	register(&command{
		name:    "verify",
		summary: "accuracy gate: compare a quantized model with its baseline; exit 0 within tolerance, 1 otherwise",
		usage: "--baseline PATH --candidate PATH --data FILE [--max-ppl-increase 1%] [--max-kl X] [--json FILE]\n\n" +
			"Both models run on the same tokens of the data file's evaluation split (its second half). Prints\n" +
			"both perplexities, the relative increase, the mean KL(baseline || candidate) of the next-token\n" +
			"distribution and the top-1 agreement. PATH: llama2.c .bin, Hugging Face directory, or an\n" +
			"`autoq export`/`autoq run` compressed-tensors directory. Exit codes: 0 pass, 1 fail or error, 2 usage.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.baseline, "baseline", "", "full-precision model (required)")
			fs.StringVar(&f.candidate, "candidate", "", "quantized model (required)")
			fs.StringVar(&f.data, "data", "", "text file or .jsonl of token ids (required)")
			fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer (default: found beside the baseline model)")
			fs.StringVar(&f.maxPPL, "max-ppl-increase", "1%", "largest allowed relative perplexity increase (\"1%\" or 0.01); \"off\" disables")
			fs.Float64Var(&f.maxKL, "max-kl", 0, "largest allowed mean KL in nats per token (0: not checked)")
			fs.IntVar(&f.seqLen, "seq-len", 256, "tokens per window")
			fs.IntVar(&f.tokens, "tokens", 0, "evaluation tokens (0: the whole evaluation split)")
			fs.IntVar(&f.batch, "batch", 8, "windows per forward pass")
			fs.StringVar(&f.jsonFile, "json", "", "also write the report as JSON to `FILE` (\"-\": stdout instead of the table)")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("verify takes no arguments, got %q", args)
			}
			return runVerify(e, f)
		},
	})
}

// parsePercent reads "1%", "0.5 %" or a fraction such as 0.01; "off" gives -1.
func parsePercent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return -1, nil
	}
	scale := 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "%")), 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number or percentage", s)
	}
	return v * scale, nil
}

// errGateFailed makes the command exit 1 after the report has been printed.
type gateError struct{ failures []string }

func (g gateError) Error() string { return "accuracy gate failed: " + strings.Join(g.failures, "; ") }

func runVerify(e *env, f *verifyFlags) error {
	if f.baseline == "" || f.candidate == "" || f.data == "" {
		return usagef("--baseline, --candidate and --data are required")
	}
	maxPPL, err := parsePercent(f.maxPPL)
	if err != nil {
		return usagef("--max-ppl-increase: %v", err)
	}
	if f.maxKL < 0 || f.seqLen < 2 || f.tokens < 0 || f.batch < 1 {
		return usagef("--max-kl, --tokens must be >= 0, --seq-len >= 2, --batch >= 1")
	}
	base, err := pipeline.LoadAny(f.baseline)
	if err != nil {
		return err
	}
	cand, err := pipeline.LoadAny(f.candidate)
	if err != nil {
		return err
	}
	var tok tokenizer.Tokenizer
	bos := 1
	if !strings.EqualFold(strings.ToLower(f.data[max(0, len(f.data)-6):]), ".jsonl") {
		tp := f.tokenizer
		if tp == "" {
			if tp = defaultTokenizer(f.baseline, base.Config.Vocab); tp == "" {
				return usagef("no tokenizer found beside %s: give --tokenizer", f.baseline)
			}
		}
		if tok, err = tokenizer.Load(tp); err != nil {
			return err
		}
		bos = tok.BOS()
	}
	wins, err := pipeline.LoadEval(f.data, tok, base.Config.Vocab, f.seqLen, f.tokens)
	if err != nil {
		return err
	}
	rep, err := pipeline.Verify(base, cand, wins, bos, f.batch, pipeline.Gate{MaxPPLIncrease: maxPPL, MaxKL: f.maxKL})
	if err != nil {
		return err
	}
	if f.jsonFile != "" && f.jsonFile != "-" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if f.jsonFile == "-" {
		if err := writeReportJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printVerify(e.stdout, rep)
	}
	if !rep.Pass {
		return gateError{rep.Failures}
	}
	return nil
}

func printVerify(w io.Writer, r *pipeline.VerifyReport) {
	fmt.Fprintf(w, "tokens            %d (%d scored)\n", r.Tokens, r.Scored)
	fmt.Fprintf(w, "baseline ppl      %.4f\n", r.BaselinePPL)
	fmt.Fprintf(w, "candidate ppl     %.4f (%+.3f%%)\n", r.CandidatePPL, 100*r.PPLIncrease)
	fmt.Fprintf(w, "KL                %.6f nats/token\n", r.KL)
	fmt.Fprintf(w, "top-1 agreement   %.2f%%\n", 100*r.Top1)
	lim := "off"
	if r.MaxPPLIncrease >= 0 {
		lim = fmt.Sprintf("ppl +%.3f%%", 100*r.MaxPPLIncrease)
	}
	if r.MaxKL > 0 {
		lim += fmt.Sprintf(", KL %.6f", r.MaxKL)
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL: " + strings.Join(r.Failures, "; ")
	}
	fmt.Fprintf(w, "gate              %s -> %s\n", lim, verdict)
}
