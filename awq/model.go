package awq

import (
	"fmt"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
)

// Tensors returns the checkpoint tensors model.New reads, by HF name, as m holds them
// (F32, shared: do not modify).
func Tensors(m *model.Model) map[string]*tensor.Tensor {
	names := []string{"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
	for l := 0; l < m.Config.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		names = append(names, p+"input_layernorm.weight", p+"post_attention_layernorm.weight")
		for _, n := range m.LinearNames()[7*l : 7*l+7] {
			names = append(names, n+".weight", n+".bias")
		}
	}
	ts := map[string]*tensor.Tensor{}
	for _, n := range names {
		if t := m.Weight(n); t != nil {
			ts[n] = t
		}
	}
	return ts
}

// Rescale builds a new full-precision model from m's checkpoint tensors folded with scales
// (Fold); it computes the same function as m up to float32 rounding. It also returns the
// scales applied.
func Rescale(m *model.Model, scales []Scales) (*model.Model, []Scales, error) {
	ts, applied, err := Fold(Tensors(m), scales)
	if err != nil {
		return nil, nil, err
	}
	nm, err := model.New(m.Config, ts)
	if err != nil {
		return nil, nil, fmt.Errorf("awq: rescaled model: %w", err)
	}
	return nm, applied, nil
}

// Model runs the whole method on m: the search of every group's scales (with m's
// Hessians hs and mean |x| absMean, quantizer q), the rescaled model, and its layers'
// Hessians (transformed, no second calibration pass). Quantize the returned model's
// layers with the returned Hessians.
func Model(m *model.Model, hs map[string]*gptq.Hessian, absMean map[string][]float64, q Quantizer, opt Options) (*model.Model, map[string]*gptq.Hessian, []Scales, error) {
	groups, err := Groups(m.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	scales, err := Search(Tensors(m), groups, hs, absMean, q, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	if opt.Check != nil {
		if scales, _, _, err = Accept(m, hs, scales, opt.Check.Seqs, opt.Check.Batch, opt.Check.Quantize); err != nil {
			return nil, nil, nil, err
		}
	}
	nm, applied, err := Rescale(m, scales)
	if err != nil {
		return nil, nil, nil, err
	}
	nhs, err := ScaleHessians(hs, applied)
	if err != nil {
		return nil, nil, nil, err
	}
	return nm, nhs, applied, nil
}
