package autoquant

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// ExportOptions configures Export (`autoq export`).
type ExportOptions struct {
	Input
	TRTOptions
	Plan string // plan file from autoq plan
	// Target is what must load the export (vllm, transformers, tensorrt, any): default
	// the plan's, else vllm.
	Target string
	// ScaleDType is the dtype of weight-only layers' scales: auto (the dtype the model is
	// served in, ServeDType), f16, bf16 or f32.
	ScaleDType string
	// Format is the output: "" or "compressed-tensors" (a directory), or "gguf" (one
	// file for llama.cpp; the gguf target). --target gguf implies it.
	Format string
	// FullType is the GGUF type of what stays in full precision (embeddings, w16 layers):
	// auto (the model's 16-bit dtype, F16 for F32), f32, f16 or bf16.
	FullType string
	Out      string
	Force    bool // replace a previous autoq export at Out
}

// ExportReport is the result of Export.
type ExportReport struct {
	Out        string            `json:"out"`
	Target     string            `json:"target"`
	ScaleDType string            `json:"scale_dtype"`
	Layers     map[string]string `json:"layers"`
	Quantized  int               `json:"quantized_layers"`
	SizeBefore int64             `json:"size_before_bytes"`
	SizeAfter  int64             `json:"size_after_bytes"`
	AvgBits    float64           `json:"avg_bits"`
	// Format is "gguf" for a GGUF file, whose storage GGUF gives in llama.cpp's accounting.
	Format string    `json:"format,omitempty"`
	GGUF   *GGUFBits `json:"gguf,omitempty"`
}

// WriteTable prints the summary lines.
func (r *ExportReport) WriteTable(w io.Writer) {
	if r.GGUF != nil {
		fmt.Fprintf(w, "exported %d of %d linear layers to %s (GGUF for llama.cpp: %s)\n", r.Quantized, len(r.Layers), r.Out, typeCounts(r.GGUF.Types))
		fmt.Fprintf(w, "llama.cpp's accounting: %.3f bits/weight over the linear layers, %.3f over every tensor; weights %s -> %s\n",
			r.GGUF.Linear, r.GGUF.All, HumanBytes(r.SizeBefore), HumanBytes(r.SizeAfter))
		return
	}
	fmt.Fprintf(w, "exported %d of %d linear layers to %s (compressed-tensors for %s, %s scales)\n", r.Quantized, len(r.Layers), r.Out, r.Target, r.ScaleDType)
	fmt.Fprintf(w, "average %.3f bits/weight over the linear layers; weights %s -> %s\n", r.AvgBits, HumanBytes(r.SizeBefore), HumanBytes(r.SizeAfter))
}

// scaleDTypes resolves --scale-dtype for a model of dtype model and target t: the scale
// dtype, and the dtype the export is served in. Engines that keep scales in the serving
// dtype (vLLM) need the two equal, so a 16-bit model's scales are in its own dtype and F32
// scales are refused; an F32 model is served in the scale dtype (its config says so).
func scaleDTypes(flag string, model tensor.DType, t *exportTarget) (scale, serve tensor.DType, err error) {
	strict := t.t.ScalesInServeDType
	switch strings.ToLower(flag) {
	case "", "auto":
		d := ServeDType(model)
		return d, d, nil
	case "f16", "bf16":
		d := tensor.F16
		if strings.EqualFold(flag, "bf16") {
			d = tensor.BF16
		}
		if model == tensor.F32 {
			return d, d, nil
		}
		if d != model && strict {
			return 0, 0, usagef("--scale-dtype %s: %s keeps weight-only scales in the model's dtype (%s): they would be rounded on load", flag, t.t.Name, model)
		}
		return d, model, nil
	case "f32":
		if strict {
			return 0, 0, usagef("--scale-dtype f32: %s keeps weight-only scales in the dtype the model is served in (F16 or BF16): they would be rounded on load", t.t.Name)
		}
		return tensor.F32, model, nil
	}
	return 0, 0, usagef("--scale-dtype must be auto, f16, bf16 or f32, not %q", flag)
}

// prepare does what both formats of export do after their own checks: refuse unsafe
// outputs (out, beside inputs), check the data, open the device, read the plan and open
// the model.
func (f *ExportOptions) prepare(env Env, inputs []string, out atomicfile.Target) (*plan.Plan, *Source, error) {
	if err := checkOutputs(env, f.Force, inputs, out); err != nil {
		return nil, nil, err
	}
	if err := checkData(f.Model, f.Data); err != nil {
		return nil, nil, err
	}
	if _, err := openDevice(env, "export", f.Device); err != nil {
		return nil, nil, err
	}
	p, err := plan.Read(f.Plan)
	if err != nil {
		return nil, nil, err
	}
	src, err := OpenSource(f.Model, f.Tokenizer)
	if err != nil {
		return nil, nil, err
	}
	return p, src, nil
}

// planModel builds src's model and resolves the plan over its linear layers: the model,
// the layers and each layer's recipe.
func planModel(src *Source, p *plan.Plan) (*model.Model, []plan.Layer, []quant.Recipe, error) {
	m, err := src.NewModel()
	if err != nil {
		return nil, nil, nil, err
	}
	layers := Layers(m)
	choices, err := p.Resolve(layers)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, layers, choices, nil
}

// planQuantizers is the quantizers of the plan's layers: calibrated on --data (GPTQ,
// activation thresholds) when given, else the defaults, with a note when GPTQ layers fall
// back to round-to-nearest for want of data.
func (f *ExportOptions) planQuantizers(env Env, src *Source, choices []quant.Recipe) (*Quantizers, error) {
	if f.Data == "" {
		if f.Int4 == "gptq" && needsLowBit(choices) {
			env.logf("note: no --data, so layers below 8 bits use round-to-nearest (GPTQ needs calibration data)\n")
		}
		return &Quantizers{}, nil
	}
	d, err := loadData(f.Data, src.Tok, src.Cfg.Vocab, f.dataOptions(), dataNeed{})
	if err != nil {
		return nil, err
	}
	return f.quantizers(env, src, d, choices)
}

// applyPlanShown is ApplyPlan with a progress bar over the model's n linear layers.
func applyPlanShown(env Env, m *model.Model, p *plan.Plan, qz *Quantizers, n int) ([]*Layer, error) {
	bar := progress.New(env.bars(), "quantize", int64(n), "layers")
	ql, err := ApplyPlan(m, p, qz, func() { bar.Add(1) })
	bar.Done()
	return ql, err
}

// Export is `autoq export`: quantize a model by a plan and write it in the
// compressed-tensors format (with a TensorRT cache for static W8A8), after checking that
// the target loads every layer.
func Export(env Env, f ExportOptions) (*ExportReport, error) {
	if f.Model == "" || f.Plan == "" || f.Out == "" {
		return nil, usagef("--model, --plan and --out are required")
	}
	if gg, err := f.ggufFormat(); err != nil || gg {
		if err != nil {
			return nil, err
		}
		return exportGGUF(env, f)
	}
	if f.FullType != "" && f.FullType != "auto" {
		return nil, usagef("--full-type is for --format gguf")
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := f.checkTRT(); err != nil {
		return nil, err
	}
	p, src, err := f.prepare(env, []string{f.Model, f.Data, f.Tokenizer, f.Plan, f.CalibTable}, outDir("--out", f.Out, export.OutputKind))
	if err != nil {
		return nil, err
	}
	m, layers, choices, err := planModel(src, p)
	if err != nil {
		return nil, err
	}
	tname := f.Target
	if tname == "" {
		tname = p.Target
	}
	et, err := openTarget(tname, ServeDType(src.DType()), layers)
	if err != nil {
		if f.Target == "" && p.Target != "" {
			return nil, fmt.Errorf("plan file %s: %w", f.Plan, err)
		}
		return nil, err
	}
	sd, serve, err := scaleDTypes(f.ScaleDType, src.DType(), et)
	if err != nil {
		return nil, err
	}
	et.serve = serve
	if et.warn != nil && et.warn.ScalesInServeDType && sd != serve {
		env.logf("warning: %s scales on a model served in %s: %s would round them on load\n", sd, serve, et.warn.Name)
	}
	if err := et.checkPlan(env, choices); err != nil {
		return nil, err
	}
	qz, err := f.planQuantizers(env, src, choices)
	if err != nil {
		return nil, err
	}
	qz.ScaleDType = sd
	var table *calib.Table
	if f.CalibTable != "" {
		if table, qz.Amax, err = tableAmax(f.CalibTable, m.LinearNames()); err != nil {
			return nil, err
		}
	}
	ql, err := applyPlanShown(env, m, p, qz, len(layers))
	if err != nil {
		return nil, err
	}
	if err := et.checkInputScales(env, ql); err != nil {
		return nil, err
	}
	em := ExportModel(src, m, ql)
	setServeDType(em, src, serve)
	em.Extra = map[string][]byte{}
	var cache *calib.TRTCache
	if table != nil {
		if cache, err = calib.TRTCacheFromTable(table, calib.DefaultTRTVersion); err != nil {
			return nil, err
		}
	} else if len(qz.Amax) > 0 {
		meth, _ := calib.ParseMethod(f.CalibMethod)
		cache = trtCacheOf(qz.Amax, meth)
	}
	if cache != nil {
		if em.Extra[TRTCacheFile], err = f.TRTOptions.render(env, cache, TRTCacheFile); err != nil {
			return nil, err
		}
	}
	if err := export.Write(f.Out, em, export.Options{ScaleDType: sd}); err != nil {
		return nil, err
	}
	rep := &ExportReport{Out: f.Out, Target: et.t.Name, ScaleDType: sd.String(), Layers: map[string]string{}, Quantized: len(ql),
		SizeBefore: src.Bytes(), AvgBits: plan.AverageBits(layers, choices, p.ScaleBits)}
	for i, l := range layers {
		rep.Layers[l.Name] = choices[i].String()
	}
	if st, err := os.Stat(filepath.Join(f.Out, export.WeightsFile)); err == nil {
		rep.SizeAfter = st.Size()
	}
	return rep, nil
}

// setServeDType records the dtype an F32 model's export is served in (its scales' dtype)
// as the config's torch_dtype, so that an engine loading it with dtype "auto" keeps the
// scales exactly.
func setServeDType(em *export.Model, src *Source, serve tensor.DType) {
	if src.DType() == tensor.F32 && serve != tensor.F32 {
		em.Config["torch_dtype"] = torchDType(serve)
	}
}

// needsLowBit reports whether a choice quantizes weights below 8 bits (GPTQ's layers).
func needsLowBit(cs []quant.Recipe) bool {
	for _, c := range cs {
		if lowBit(c) {
			return true
		}
	}
	return false
}
