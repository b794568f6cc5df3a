package autoquant

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// ExportOptions configures Export (`autoq export`).
type ExportOptions struct {
	Input
	Plan       string // plan file from autoq plan
	ScaleDType string // f16, bf16 or f32: weight-only layers' scales
	Out        string
	Force      bool // replace a previous autoq export at Out
}

// ExportReport is the result of Export.
type ExportReport struct {
	Out        string            `json:"out"`
	Layers     map[string]string `json:"layers"`
	Quantized  int               `json:"quantized_layers"`
	SizeBefore int64             `json:"size_before_bytes"`
	SizeAfter  int64             `json:"size_after_bytes"`
	AvgBits    float64           `json:"avg_bits"`
}

// WriteTable prints the summary lines.
func (r *ExportReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "exported %d of %d linear layers to %s (compressed-tensors)\n", r.Quantized, len(r.Layers), r.Out)
	fmt.Fprintf(w, "average %.3f bits/weight over the linear layers; weights %s -> %s\n", r.AvgBits, HumanBytes(r.SizeBefore), HumanBytes(r.SizeAfter))
}

func parseScaleDType(s string) (tensor.DType, error) {
	switch strings.ToLower(s) {
	case "f16":
		return tensor.F16, nil
	case "bf16":
		return tensor.BF16, nil
	case "f32":
		return tensor.F32, nil
	}
	return tensor.Invalid, usagef("--scale-dtype must be f16, bf16 or f32, not %q", s)
}

// Export is `autoq export`: quantize a model by a plan and write it in the
// compressed-tensors format (with a TensorRT cache for static W8A8).
func Export(env Env, f ExportOptions) (*ExportReport, error) {
	if f.Model == "" || f.Plan == "" || f.Out == "" {
		return nil, usagef("--model, --plan and --out are required")
	}
	sd, err := parseScaleDType(f.ScaleDType)
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := checkOutputs(env, f.Force, []string{f.Model, f.Data, f.Tokenizer, f.Plan, f.CalibTable}, outDir("--out", f.Out, export.OutputKind)); err != nil {
		return nil, err
	}
	if err := checkData(f.Model, f.Data); err != nil {
		return nil, err
	}
	if err := openDevice(env, "export", f.Device); err != nil {
		return nil, err
	}
	p, err := plan.Read(f.Plan)
	if err != nil {
		return nil, err
	}
	src, err := OpenSource(f.Model, f.Tokenizer)
	if err != nil {
		return nil, err
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, err
	}
	layers := Layers(m)
	choices, err := p.Resolve(layers)
	if err != nil {
		return nil, err
	}
	qz := &Quantizers{ScaleDType: sd}
	if f.Data != "" {
		d, err := loadData(f.Data, src.Tok, src.Cfg.Vocab, f.dataOptions(), dataNeed{})
		if err != nil {
			return nil, err
		}
		if qz, err = f.quantizers(env, src, d, choices); err != nil {
			return nil, err
		}
		qz.ScaleDType = sd
	} else if f.Int4 == "gptq" && needsLowBit(choices) {
		env.logf("note: no --data, so layers below 8 bits use round-to-nearest (GPTQ needs calibration data)\n")
	}
	var table *calib.Table
	if f.CalibTable != "" {
		if table, qz.Amax, err = tableAmax(f.CalibTable, m.LinearNames()); err != nil {
			return nil, err
		}
	}
	bar := progress.New(env.bars(), "quantize", int64(len(layers)), "layers")
	ql, err := ApplyPlan(m, p, qz, func() { bar.Add(1) })
	bar.Done()
	if err != nil {
		return nil, err
	}
	em := ExportModel(src, m, ql)
	em.Extra = map[string][]byte{}
	if table != nil {
		c, err := calib.TRTCacheFromTable(table, calib.DefaultTRTVersion)
		if err != nil {
			return nil, err
		}
		b, err := c.Marshal()
		if err != nil {
			return nil, err
		}
		em.Extra[TRTCacheFile] = b
	} else if len(qz.Amax) > 0 {
		meth, _ := calib.ParseMethod(f.CalibMethod)
		b, err := TRTCache(qz.Amax, meth)
		if err != nil {
			return nil, err
		}
		em.Extra[TRTCacheFile] = b
	}
	if err := export.Write(f.Out, em, export.Options{ScaleDType: sd}); err != nil {
		return nil, err
	}
	rep := &ExportReport{Out: f.Out, Layers: map[string]string{}, Quantized: len(ql), SizeBefore: src.Bytes(),
		AvgBits: plan.AverageBits(layers, choices, p.ScaleBits)}
	for i, l := range layers {
		rep.Layers[l.Name] = choices[i].String()
	}
	if st, err := os.Stat(filepath.Join(f.Out, export.WeightsFile)); err == nil {
		rep.SizeAfter = st.Size()
	}
	return rep, nil
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
