package autoquant

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/model"
)

// Gate is the accuracy tolerance of a candidate against its baseline.
type Gate struct {
	MaxPPLIncrease float64 // relative perplexity increase allowed (0.01 = 1%); < 0: not checked
	MaxKL          float64 // mean KL allowed, nats; <= 0: not checked
}

// VerifyReport is the gate's verdict (also the JSON report for CI).
type VerifyReport struct {
	Tokens         int      `json:"tokens"`
	Scored         int      `json:"scored_tokens"`
	BaselinePPL    float64  `json:"baseline_perplexity"`
	CandidatePPL   float64  `json:"candidate_perplexity"`
	PPLIncrease    float64  `json:"ppl_increase"` // relative: candidate/baseline - 1
	KL             float64  `json:"kl"`
	Top1           float64  `json:"top1_agreement"`
	MaxPPLIncrease float64  `json:"max_ppl_increase"`
	MaxKL          float64  `json:"max_kl,omitempty"`
	BaselineSec    float64  `json:"baseline_seconds"`
	CandidateSec   float64  `json:"candidate_seconds"`
	Pass           bool     `json:"pass"`
	Failures       []string `json:"failures,omitempty"`
}

// CompareModels evaluates baseline and candidate on the same windows and applies the gate.
func CompareModels(baseline, candidate *model.Model, wins [][]int, bos, batch int, g Gate) (*VerifyReport, error) {
	if baseline.Config.Vocab != candidate.Config.Vocab {
		return nil, fmt.Errorf("verify: baseline vocabulary %d differs from candidate's %d", baseline.Config.Vocab, candidate.Config.Vocab)
	}
	opt := eval.Options{Vocab: baseline.Config.Vocab, BOS: bos, Batch: max(batch, 1)}
	// Baseline alone first for its timing, then the candidate against it.
	b, err := eval.Evaluate(baseline, nil, newWindows(wins), opt)
	if err != nil {
		return nil, fmt.Errorf("verify: baseline: %w", err)
	}
	r, err := eval.Evaluate(candidate, baseline, newWindows(wins), opt)
	if err != nil {
		return nil, fmt.Errorf("verify: candidate: %w", err)
	}
	rep := &VerifyReport{Tokens: r.Tokens, Scored: r.Scored, BaselinePPL: r.RefPPL, CandidatePPL: r.Perplexity,
		PPLIncrease: r.Perplexity/r.RefPPL - 1, KL: r.KL, Top1: r.Top1, MaxPPLIncrease: g.MaxPPLIncrease,
		MaxKL: g.MaxKL, BaselineSec: b.Seconds, CandidateSec: r.Seconds}
	rep.applyGate()
	return rep, nil
}

// applyGate records in Failures each limit (MaxPPLIncrease, MaxKL) the candidate exceeds,
// and a NaN perplexity or KL; Pass when there is none.
func (rep *VerifyReport) applyGate() {
	if math.IsNaN(rep.PPLIncrease) || math.IsNaN(rep.KL) {
		rep.Failures = append(rep.Failures, "perplexity or KL is NaN")
	}
	if rep.MaxPPLIncrease >= 0 && rep.PPLIncrease > rep.MaxPPLIncrease {
		rep.Failures = append(rep.Failures, fmt.Sprintf("perplexity increase %.3f%% exceeds %.3f%%", 100*rep.PPLIncrease, 100*rep.MaxPPLIncrease))
	}
	if rep.MaxKL > 0 && rep.KL > rep.MaxKL {
		rep.Failures = append(rep.Failures, fmt.Sprintf("KL %.5f exceeds %.5f", rep.KL, rep.MaxKL))
	}
	rep.Pass = len(rep.Failures) == 0
}
