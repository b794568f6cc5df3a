package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/awq"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// AWQBlockSeqs is how many calibration windows feed the block-output objective of the
// q/k/v and gate/up scales (awq.Blocks).
const AWQBlockSeqs = 16

// ScaleSource returns a copy of src whose checkpoint tensors carry activation-aware
// per-input-channel scales (package awq), searched on the calibration windows for the
// int4 choice c quantized by GPTQ with opt: the norms (and v_proj/up_proj rows) divided,
// the consuming layers' columns multiplied. The rescaled model computes the same function
// in full precision; everything downstream (Hessians, sensitivity, quantization) runs on
// it unchanged, and ExportModel writes its rescaled norms and full-precision layers,
// because it copies the source's tensors. Tensors keep their dtype (see awq.Fold for what
// that means for F16/BF16 checkpoints).
func ScaleSource(src *Source, calib [][]int, batch int, c quant.Recipe, opt gptq.Options) (*Source, []awq.Scales, error) {
	if c.Full || c.Weight.Bits != 4 {
		return nil, nil, fmt.Errorf("awq: scales are searched for an int4 scheme, not %s", c)
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, nil, err
	}
	hs, err := collect.Hessians(m, calib, batch, nil)
	if err != nil {
		return nil, nil, err
	}
	am, err := awq.MeanAbs(m, calib, batch)
	if err != nil {
		return nil, nil, err
	}
	blocks, err := awq.CaptureBlocks(m, calib[:min(AWQBlockSeqs, len(calib))], batch)
	if err != nil {
		return nil, nil, err
	}
	groups, err := awq.Groups(src.Cfg)
	if err != nil {
		return nil, nil, err
	}
	q := func(name string, w []float32, rows, cols int, h *gptq.Hessian) ([]float32, error) {
		qt, _, err := gptq.Quantize(name, w, rows, cols, c.For(cols), h, opt)
		if err != nil {
			return nil, err
		}
		return quant.Dequantize(qt), nil
	}
	scales, err := awq.Search(awq.Tensors(m), groups, hs, am, q, awq.Options{Blocks: blocks})
	if err != nil {
		return nil, nil, err
	}
	ts := make(map[string]*tensor.Tensor, len(src.Tensors))
	for _, nt := range src.Tensors {
		ts[nt.Name] = nt.T
	}
	folded, applied, err := awq.Fold(ts, scales)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src.displayPath(), err)
	}
	out := *src
	out.Tensors = make([]safetensors.NamedTensor, len(src.Tensors))
	for i, nt := range src.Tensors {
		out.Tensors[i] = safetensors.NamedTensor{Name: nt.Name, T: folded[nt.Name]}
	}
	return &out, applied, nil
}
