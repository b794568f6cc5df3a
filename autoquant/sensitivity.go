package autoquant

import (
	"context"
	"fmt"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
)

// SensOptions configures Sensitivity.
type SensOptions struct {
	Schemes    []quant.Recipe
	Quantizers *Quantizers
	Batch      int                   // windows per forward pass (default 8)
	Progress   func(done, total int) // called after each (layer, scheme)
	Layers     []string              // restrict to these layers (default: all)
	BOS        int                   // BOS id (targets equal to it are not scored); 0 means 1
	Ctx        context.Context       // cancels between (layer, scheme) runs; nil: never
}

// MeasureSensitivity measures, for each linear layer of m and each scheme, the damage of
// quantizing only that layer: mean KL divergence of the next-token distribution against
// the full-precision model and the perplexity, on the windows wins. The full-precision
// logits are computed once and reused for every (layer, scheme) (see the package comment).
// m is left as it was.
func MeasureSensitivity(m *model.Model, wins [][]int, opt SensOptions) (*plan.Sensitivity, error) {
	if len(wins) == 0 {
		return nil, fmt.Errorf("sensitivity: no tokens")
	}
	if len(opt.Schemes) == 0 {
		return nil, fmt.Errorf("sensitivity: no candidate schemes")
	}
	qz := opt.Quantizers
	if qz == nil {
		qz = &Quantizers{}
	}
	batch := max(opt.Batch, 1)
	if opt.Batch == 0 {
		batch = 8
	}
	vocab, bos := m.Config.Vocab, opt.BOS
	if bos == 0 {
		bos = 1
	}
	ref := make([][]float32, 0, len(wins))
	for b := 0; b < len(wins); b += batch {
		lg, err := m.Forward(wins[b:min(b+batch, len(wins))], nil)
		if err != nil {
			return nil, err
		}
		ref = append(ref, lg...)
	}
	var base eval.Accumulator
	for i, w := range wins {
		base.AddWindow(w, ref[i], nil, vocab, bos)
	}
	names := opt.Layers
	if len(names) == 0 {
		names = m.LinearNames()
	}
	out := &plan.Sensitivity{Tokens: countTokens(wins), BaselinePPL: base.Perplexity(),
		Method: fmt.Sprintf("one layer quantized at a time; KL vs cached full-precision logits over %d tokens", countTokens(wins))}
	for _, c := range opt.Schemes {
		out.Schemes = append(out.Schemes, c.String())
	}
	total, done := len(names)*len(opt.Schemes), 0
	for _, name := range names {
		orig := m.Linear(name)
		wt := m.Weight(name + ".weight")
		if orig == nil || wt == nil {
			return nil, fmt.Errorf("sensitivity: model has no linear layer %q", name)
		}
		ls := plan.LayerSensitivity{Name: name, Rows: wt.Shape[0], Cols: wt.Shape[1], Damage: map[string]plan.Damage{}}
		for _, c := range opt.Schemes {
			if c.Block != quant.BlockNone && ls.Cols%c.Block.Size() != 0 {
				// A block format cannot store this width (the gguf target refuses it): not
				// measured, so the planner does not offer it here.
				done++
				continue
			}
			l, err := qz.Quantize(m, name, c)
			if err != nil {
				return nil, err
			}
			if err := m.SetLinear(name, l.Linear); err != nil {
				return nil, err
			}
			var acc eval.Accumulator
			for b := 0; b < len(wins); b += batch {
				lg, err := m.Forward(wins[b:min(b+batch, len(wins))], nil)
				if err != nil {
					m.SetLinear(name, orig)
					return nil, err
				}
				for i, w := range wins[b:min(b+batch, len(wins))] {
					acc.AddWindow(w, lg[i], ref[b+i], vocab, bos)
				}
			}
			if err := m.SetLinear(name, orig); err != nil {
				return nil, err
			}
			ppl := acc.Perplexity()
			ls.Damage[c.String()] = plan.Damage{KL: acc.KL(), PPL: ppl, PPLDelta: ppl/out.BaselinePPL - 1}
			done++
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
			if opt.Ctx != nil && opt.Ctx.Err() != nil {
				return nil, opt.Ctx.Err()
			}
		}
		out.Layers = append(out.Layers, ls)
	}
	return out, nil
}
