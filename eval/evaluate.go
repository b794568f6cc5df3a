package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/autoq/autoq/model"
)

// Forwarder is a model that returns logits for a batch of sequences ([len, vocab] each).
// *model.Model is one.
type Forwarder interface {
	Forward(tokens [][]int, hook model.Hook) ([][]float32, error)
}

// Source hands out token windows until io.EOF. *Windows is one.
type Source interface {
	Next() ([]int, error)
}

// Options configures Evaluate.
type Options struct {
	Vocab    int              // vocabulary size (the logits' row length)
	BOS      int              // BOS id: BOS targets are not scored
	Batch    int              // windows per forward call (default 1)
	Progress func(tokens int) // called after each batch with the tokens it held
	Ctx      context.Context  // stops the evaluation between batches; nil: never
}

// Result is the outcome of an evaluation. The Ref* fields and KL/Top1 are set when a
// reference model was given.
type Result struct {
	Windows      int     `json:"windows"`
	Tokens       int     `json:"tokens"`        // tokens run through the model
	Scored       int     `json:"scored_tokens"` // targets scored
	NLL          float64 `json:"nll"`
	Perplexity   float64 `json:"perplexity"`
	Seconds      float64 `json:"seconds"` // forward time of the evaluated model
	TokensPerSec float64 `json:"tokens_per_sec"`
	HasRef       bool    `json:"has_reference"`
	RefNLL       float64 `json:"ref_nll,omitempty"`
	RefPPL       float64 `json:"ref_perplexity,omitempty"`
	KL           float64 `json:"kl"`   // mean KL(P_ref || P_model), nats
	Top1         float64 `json:"top1"` // top-1 agreement with the reference
}

// Evaluate runs m (and ref, if not nil) over every window of src. Pass a nil interface, not
// a nil *model.Model, for "no reference".
func Evaluate(m, ref Forwarder, src Source, opt Options) (Result, error) {
	if ref == nil {
		r, _, err := Compare(m, nil, src, opt)
		return r, err
	}
	r, rs, err := Compare(ref, []Forwarder{m}, src, opt)
	if err != nil {
		return Result{}, err
	}
	rs[0].RefNLL, rs[0].RefPPL = r.NLL, r.Perplexity
	return rs[0], nil
}

// Compare runs the reference model and every candidate on the same windows of src, each
// batch once through the reference, and returns the reference's own result and each
// candidate's result against it (KL, top-1, RefNLL/RefPPL set).
func Compare(ref Forwarder, cands []Forwarder, src Source, opt Options) (Result, []Result, error) {
	if opt.Vocab <= 0 {
		return Result{}, nil, fmt.Errorf("eval: vocabulary size must be positive")
	}
	batch := max(opt.Batch, 1)
	refAcc, accs := Accumulator{}, make([]Accumulator, len(cands))
	var refRes Result
	res := make([]Result, len(cands))
	refTime, times := time.Duration(0), make([]time.Duration, len(cands))
	for done := false; !done; {
		if opt.Ctx != nil && opt.Ctx.Err() != nil {
			return Result{}, nil, opt.Ctx.Err()
		}
		var wins [][]int
		for len(wins) < batch {
			w, err := src.Next()
			if errors.Is(err, io.EOF) {
				done = true
				break
			}
			if err != nil {
				return Result{}, nil, err
			}
			wins = append(wins, w)
		}
		if len(wins) == 0 {
			break
		}
		t0 := time.Now()
		refLogits, err := ref.Forward(wins, nil)
		refTime += time.Since(t0)
		if err != nil {
			return Result{}, nil, err
		}
		n := 0
		for i, w := range wins {
			refAcc.AddWindow(w, refLogits[i], nil, opt.Vocab, opt.BOS)
			n += len(w)
		}
		refRes.Windows += len(wins)
		refRes.Tokens += n
		for c, m := range cands {
			t0 := time.Now()
			logits, err := m.Forward(wins, nil)
			times[c] += time.Since(t0)
			if err != nil {
				return Result{}, nil, err
			}
			for i, w := range wins {
				accs[c].AddWindow(w, logits[i], refLogits[i], opt.Vocab, opt.BOS)
			}
		}
		if opt.Progress != nil {
			opt.Progress(n)
		}
	}
	if refAcc.Scored == 0 {
		return Result{}, nil, fmt.Errorf("eval: no tokens were scored (empty data?)")
	}
	finish := func(r *Result, a *Accumulator, d time.Duration) {
		r.Windows, r.Tokens = refRes.Windows, refRes.Tokens
		r.Scored = a.Scored
		r.NLL, r.Perplexity = a.NLL(), a.Perplexity()
		r.Seconds = d.Seconds()
		r.TokensPerSec = float64(r.Tokens) / max(r.Seconds, 1e-9)
	}
	finish(&refRes, &refAcc, refTime)
	for c := range cands {
		finish(&res[c], &accs[c], times[c])
		res[c].HasRef = true
		res[c].RefNLL, res[c].RefPPL = refRes.NLL, refRes.Perplexity
		res[c].KL, res[c].Top1 = accs[c].KL(), accs[c].Top1()
	}
	return refRes, res, nil
}
