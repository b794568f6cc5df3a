package awq

import (
	"fmt"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// ModelQuantizer quantizes every linear layer of m with the layers' Hessians hs (for
// example collect.QuantizeModel with fixed settings).
type ModelQuantizer func(m *model.Model, hs map[string]*gptq.Hessian) (map[string]*quant.QTensor, error)

// Accept checks the searched scales end to end on calibration sequences: starting from
// the unscaled quantized model, each group's scales (in order) are kept only if the
// quantized model's mean next-token negative log-likelihood on seqs gets lower with them
// (greedy, one quantization and one forward pass over seqs per scaled group). Groups
// that are dropped come back with S = 1 and Alpha = 0. The layer (or block) errors the
// search minimises are measured on full-precision activations with every output channel
// weighted alike; on small models that is not always what the loss sees (stories260K:
// o_proj scales that lower o_proj's output error raise the perplexity), and this check
// keeps only what the model's own loss confirms. It returns the kept scales and the
// losses before and after.
func Accept(m *model.Model, hs map[string]*gptq.Hessian, scales []Scales, seqs [][]int, batch int, q ModelQuantizer) ([]Scales, float64, float64, error) {
	if len(seqs) == 0 {
		return nil, 0, 0, fmt.Errorf("awq: accept: no sequences")
	}
	loss := func(kept []Scales) (float64, error) {
		nm, applied, err := Rescale(m, kept)
		if err != nil {
			return 0, err
		}
		nhs, err := ScaleHessians(hs, applied)
		if err != nil {
			return 0, err
		}
		qs, err := q(nm, nhs)
		if err != nil {
			return 0, err
		}
		if err := collect.Plug(nm, qs); err != nil {
			return 0, err
		}
		return meanNLL(nm, seqs, batch)
	}
	base, err := loss(nil)
	if err != nil {
		return nil, 0, 0, err
	}
	cur := base
	var kept []Scales
	out := make([]Scales, len(scales))
	for i, sc := range scales {
		out[i] = sc
		if sc.Alpha == 0 && !sc.Duo {
			continue
		}
		l, err := loss(append(append([]Scales(nil), kept...), sc))
		if err != nil {
			return nil, 0, 0, err
		}
		if l < cur {
			cur = l
			kept = append(kept, sc)
			continue
		}
		out[i] = unscaled(sc)
	}
	return out, base, cur, nil
}

// unscaled is sc with S = 1 (alpha 0).
func unscaled(sc Scales) Scales {
	s := make([]float32, len(sc.S))
	for i := range s {
		s[i] = 1
	}
	sc.S, sc.Alpha, sc.Duo, sc.Err = s, 0, false, sc.Err0
	return sc
}

// meanNLL is eval.MeanNLL of m: the mean negative log-likelihood of every next token of seqs.
func meanNLL(m *model.Model, seqs [][]int, batch int) (float64, error) {
	l, err := eval.MeanNLL(m, m.Config.Vocab, seqs, batch)
	if err != nil {
		return 0, fmt.Errorf("awq: accept: %w", err)
	}
	return l, nil
}
