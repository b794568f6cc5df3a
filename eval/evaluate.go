package eval

import (
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
	if opt.Vocab <= 0 {
		return Result{}, fmt.Errorf("eval: vocabulary size must be positive")
	}
	batch := max(opt.Batch, 1)
	var acc, refAcc Accumulator
	var res Result
	var elapsed time.Duration
	for done := false; !done; {
		var wins [][]int
		for len(wins) < batch {
			w, err := src.Next()
			if errors.Is(err, io.EOF) {
				done = true
				break
			}
			if err != nil {
				return Result{}, err
			}
			wins = append(wins, w)
		}
		if len(wins) == 0 {
			break
		}
		t0 := time.Now()
		logits, err := m.Forward(wins, nil)
		elapsed += time.Since(t0)
		if err != nil {
			return Result{}, err
		}
		var refLogits [][]float32
		if ref != nil {
			if refLogits, err = ref.Forward(wins, nil); err != nil {
				return Result{}, fmt.Errorf("reference model: %w", err)
			}
		}
		n := 0
		for i, w := range wins {
			var r []float32
			if ref != nil {
				r = refLogits[i]
				refAcc.AddWindow(w, r, nil, opt.Vocab, opt.BOS)
			}
			acc.AddWindow(w, logits[i], r, opt.Vocab, opt.BOS)
			n += len(w)
		}
		res.Windows += len(wins)
		res.Tokens += n
		if opt.Progress != nil {
			opt.Progress(n)
		}
	}
	if acc.Scored == 0 {
		return Result{}, fmt.Errorf("eval: no tokens were scored (empty data?)")
	}
	res.Scored = acc.Scored
	res.NLL, res.Perplexity = acc.NLL(), acc.Perplexity()
	res.Seconds = elapsed.Seconds()
	res.TokensPerSec = float64(res.Tokens) / max(res.Seconds, 1e-9)
	if ref != nil {
		res.HasRef = true
		res.RefNLL, res.RefPPL = refAcc.NLL(), refAcc.Perplexity()
		res.KL, res.Top1 = acc.KL(), acc.Top1()
	}
	return res, nil
}
