package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/pipeline"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/tensor"
	"github.com/spf13/pflag"
)

type exportFlags struct {
	in         aqInputFlags
	plan       string
	scaleDType string
	out        string
	json       bool
}

func init() {
	f := &exportFlags{}
	register(&command{
		name:    "export",
		summary: "quantize a model by a plan and write it in the compressed-tensors format (vLLM, llm-compressor)",
		usage: "--model PATH --plan plan.json [--data FILE | --calib-table calib.json] --out DIR\n\n" +
			"Applies the plan's schemes (layers it keeps at w16 stay full precision and are listed in\n" +
			"\"ignore\"), writes config.json with quantization_config, model.safetensors (int4/int8 weight-only\n" +
			"layers pack-quantized, W8A8 layers int-quantized), the tokenizer files, and for static W8A8 a\n" +
			"TensorRT INT8 calibration cache. --data calibrates (activation thresholds, GPTQ Hessians); a\n" +
			"calibration table from `autoq calibrate` can supply the thresholds instead. The directory is\n" +
			"replaced atomically. Layout: docs/EXPORT.md.",
		flags: func(fs *pflag.FlagSet) {
			f.in.register(fs, "llama2.c .bin file or Hugging Face directory (required)")
			fs.StringVar(&f.plan, "plan", "", "plan file from autoq plan (required)")
			f.in.registerCalibTable(fs)
			fs.StringVar(&f.scaleDType, "scale-dtype", "f16", "dtype of weight-only layers' scales: f16, bf16 or f32")
			fs.StringVar(&f.out, "out", "", "output directory (required)")
			fs.BoolVar(&f.json, "json", false, "print a JSON summary")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("export takes no arguments, got %q", args)
			}
			return runExport(e, f)
		},
	})
}

type exportSummary struct {
	Out        string            `json:"out"`
	Layers     map[string]string `json:"layers"`
	Quantized  int               `json:"quantized_layers"`
	SizeBefore int64             `json:"size_before_bytes"`
	SizeAfter  int64             `json:"size_after_bytes"`
	AvgBits    float64           `json:"avg_bits"`
}

func runExport(e *env, f *exportFlags) error {
	if f.in.model == "" || f.plan == "" || f.out == "" {
		return usagef("--model, --plan and --out are required")
	}
	var sd tensor.DType
	switch strings.ToLower(f.scaleDType) {
	case "f16":
		sd = tensor.F16
	case "bf16":
		sd = tensor.BF16
	case "f32":
		sd = tensor.F32
	default:
		return usagef("--scale-dtype must be f16, bf16 or f32, not %q", f.scaleDType)
	}
	p, err := plan.Read(f.plan)
	if err != nil {
		return err
	}
	src, err := pipeline.OpenSource(f.in.model, f.in.tokenizer)
	if err != nil {
		return err
	}
	m, err := src.NewModel()
	if err != nil {
		return err
	}
	layers := pipeline.Layers(m)
	choices, err := p.Resolve(layers)
	if err != nil {
		return err
	}
	qz := &pipeline.Quantizers{ScaleDType: sd}
	if f.in.data != "" {
		d, err := pipeline.LoadData(f.in.data, src.Tok, src.Cfg.Vocab, f.in.dataOptions())
		if err != nil {
			return err
		}
		if qz, err = f.in.quantizers(e, src, d, choices); err != nil {
			return err
		}
		qz.ScaleDType = sd
	} else if f.in.int4 == "gptq" && needsInt4(choices) {
		fmt.Fprintln(e.stderr, "note: no --data, so int4 layers use round-to-nearest (GPTQ needs calibration data)")
	}
	var table *calib.Table
	if f.in.calibTable != "" {
		if table, qz.Amax, err = tableAmax(f.in.calibTable); err != nil {
			return err
		}
	}
	bar := progress.New(e.stderr, "quantize", int64(len(layers)), "layers")
	ql, err := pipeline.ApplyPlan(m, p, qz, func() { bar.Add(1) })
	bar.Done()
	if err != nil {
		return err
	}
	em := pipeline.ExportModel(src, m, ql)
	em.Extra = map[string][]byte{}
	if table != nil {
		c, err := calib.TRTCacheFromTable(table, calib.DefaultTRTVersion)
		if err != nil {
			return err
		}
		b, err := c.Marshal()
		if err != nil {
			return err
		}
		em.Extra[pipeline.TRTCacheFile] = b
	} else if len(qz.Amax) > 0 {
		meth, _ := calib.ParseMethod(f.in.calibMethod)
		b, err := pipeline.TRTCache(qz.Amax, meth)
		if err != nil {
			return err
		}
		em.Extra[pipeline.TRTCacheFile] = b
	}
	if err := export.Write(f.out, em, export.Options{ScaleDType: sd}); err != nil {
		return err
	}
	sum := exportSummary{Out: f.out, Layers: map[string]string{}, Quantized: len(ql), SizeBefore: src.Bytes(),
		AvgBits: plan.AverageBits(layers, choices, p.ScaleBits)}
	for i, l := range layers {
		sum.Layers[l.Name] = choices[i].String()
	}
	if st, err := os.Stat(f.out + "/" + export.WeightsFile); err == nil {
		sum.SizeAfter = st.Size()
	}
	if f.json {
		return writeReportJSON(e.stdout, sum)
	}
	fmt.Fprintf(e.stdout, "exported %d of %d linear layers to %s (compressed-tensors)\n", len(ql), len(layers), f.out)
	fmt.Fprintf(e.stdout, "average %.3f bits/weight over the linear layers; weights %s -> %s\n", sum.AvgBits, humanBytes(sum.SizeBefore), humanBytes(sum.SizeAfter))
	return nil
}

func needsInt4(cs []plan.Choice) bool {
	for _, c := range cs {
		if !c.Full && c.Weight.Bits == 4 {
			return true
		}
	}
	return false
}
