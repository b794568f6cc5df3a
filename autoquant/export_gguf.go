package autoquant

import (
	"os"

	"github.com/autoq/autoq/plan"
)

// ggufFormat resolves --format against --target: gguf when either says so.
func (f *ExportOptions) ggufFormat() (bool, error) {
	switch f.Format {
	case "", "compressed-tensors":
		if f.Target == GGUFTarget {
			f.Format = "gguf"
			return true, nil
		}
		return false, nil
	case "gguf":
		if f.Target != "" && f.Target != GGUFTarget {
			return false, usagef("--format gguf writes for the gguf target (llama.cpp), not --target %s", f.Target)
		}
		return true, nil
	}
	return false, usagef("--format must be compressed-tensors or gguf, not %q", f.Format)
}

// exportGGUF is `autoq export --format gguf`: quantize by a plan of llama.cpp block formats
// (checked against the gguf target) and write one GGUF file with the tokenizer.
func exportGGUF(env Env, f ExportOptions) (*ExportReport, error) {
	switch {
	case f.CalibTable != "" || f.TRTNames != "":
		return nil, usagef("--calib-table and the TensorRT options are for int8 activations, which the gguf target does not have")
	case f.ScaleDType != "" && f.ScaleDType != "auto" && f.ScaleDType != "f16":
		return nil, usagef("--scale-dtype %s: GGUF blocks store F16 scales", f.ScaleDType)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	p, src, err := f.prepare(env, []string{f.Model, f.Data, f.Tokenizer, f.Plan}, outFile("--out", f.Out))
	if err != nil {
		return nil, err
	}
	full, err := fullType(f.FullType, src.DType())
	if err != nil {
		return nil, err
	}
	if _, err := sourceVocab(src); err != nil {
		return nil, err
	}
	m, layers, choices, err := planModel(src, p)
	if err != nil {
		return nil, err
	}
	et, err := openTarget(GGUFTarget, ServeDType(src.DType()), layers)
	if err != nil {
		return nil, err
	}
	if err := et.checkPlan(env, choices); err != nil {
		return nil, err
	}
	qz, err := f.planQuantizers(env, src, choices)
	if err != nil {
		return nil, err
	}
	ql, err := applyPlanShown(env, m, p, qz, len(layers))
	if err != nil {
		return nil, err
	}
	if err := writeGGUF(f.Out, src, ql, full); err != nil {
		return nil, err
	}
	_, bits, err := LoadGGUF(f.Out)
	if err != nil {
		return nil, err
	}
	rep := &ExportReport{Out: f.Out, Target: GGUFTarget, ScaleDType: "F16", Layers: map[string]string{}, Quantized: len(ql),
		SizeBefore: src.Bytes(), AvgBits: plan.AverageBits(layers, choices, p.ScaleBits), Format: "gguf", GGUF: &bits}
	for i, l := range layers {
		rep.Layers[l.Name] = choices[i].String()
	}
	if st, err := os.Stat(f.Out); err == nil {
		rep.SizeAfter = st.Size()
	}
	return rep, nil
}
