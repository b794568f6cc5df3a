package autoquant

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/autoq/autoq/tokenizer"
)

// VerifyOptions configures Verify (`autoq verify`).
type VerifyOptions struct {
	Baseline, Candidate string // model paths (llama2.c, HF directory, or an export)
	Data, Tokenizer     string
	MaxPPLIncrease      string  // "1%", 0.01, or "off"
	GateKL              float64 // largest mean KL (0: not checked)
	SeqLen, Tokens      int
	Batch               int
	ReportFile          string // also write the report as JSON here
	Device              string
	Force               bool // overwrite an existing report file
}

// ParsePercent reads "1%", "0.5 %" or a fraction such as 0.01; "off" gives -1.
func ParsePercent(s string) (float64, error) {
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

// Verify is `autoq verify`: both models on the same evaluation windows, and the gate. The
// report comes back with a *GateError when the candidate fails.
func Verify(env Env, f VerifyOptions) (*VerifyReport, error) {
	if f.Baseline == "" || f.Candidate == "" || f.Data == "" {
		return nil, usagef("--baseline, --candidate and --data are required")
	}
	maxPPL, err := ParsePercent(f.MaxPPLIncrease)
	if err != nil {
		return nil, usagef("--max-ppl-increase: %v", err)
	}
	if f.GateKL < 0 || f.SeqLen < 2 || f.Tokens < 0 || f.Batch < 1 {
		return nil, usagef("--gate-kl, --tokens must be >= 0, --seq-len >= 2, --batch >= 1")
	}
	if err := checkOutputs(env, f.Force, []string{f.Baseline, f.Candidate, f.Data, f.Tokenizer}, outFile("--json", f.ReportFile)); err != nil {
		return nil, err
	}
	if _, err := openDevice(env, "verify", f.Device); err != nil {
		return nil, err
	}
	if err := checkData(f.Baseline, f.Data); err != nil {
		return nil, err
	}
	base, err := LoadAny(f.Baseline)
	if err != nil {
		return nil, err
	}
	cand, err := LoadAny(f.Candidate)
	if err != nil {
		return nil, err
	}
	var tok tokenizer.Tokenizer
	bos := 1
	if !isJSONL(f.Data) {
		tp := f.Tokenizer
		if tp == "" {
			if tp = defaultTokenizer(f.Baseline, base.Config.Vocab); tp == "" {
				return nil, usagef("no tokenizer found beside %s: give --tokenizer", f.Baseline)
			}
		}
		if tok, err = tokenizer.Load(tp); err != nil {
			return nil, err
		}
		bos = tok.BOS()
	}
	wins, err := LoadEval(f.Data, tok, base.Config.Vocab, f.SeqLen, f.Tokens)
	if err != nil {
		return nil, err
	}
	rep, err := CompareModels(base, cand, wins, bos, f.Batch, Gate{MaxPPLIncrease: maxPPL, MaxKL: f.GateKL})
	if err != nil {
		return nil, err
	}
	if f.ReportFile != "" {
		if err := writeJSONFile(f.ReportFile, rep); err != nil {
			return nil, err
		}
	}
	if !rep.Pass {
		return rep, &GateError{rep.Failures}
	}
	return rep, nil
}

// WriteTable prints the gate's verdict.
func (r *VerifyReport) WriteTable(w io.Writer) {
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
