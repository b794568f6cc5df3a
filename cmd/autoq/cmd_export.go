package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.ExportOptions
		asJSON bool
	)
	register(&command{
		name:    "export",
		noArgs:  true,
		summary: "quantize a model by a plan and write it in the compressed-tensors format (vLLM, llm-compressor) or as GGUF (llama.cpp)",
		usage: "--model PATH --plan plan.json [--data FILE | --calib-table calib.json] --out DIR\n" +
			"       --model PATH --plan plan.json [--data FILE] --format gguf --out FILE.gguf\n\n" +
			"Applies the plan's schemes (layers it keeps at w16 stay full precision and are listed in\n" +
			"\"ignore\"), writes config.json with quantization_config, model.safetensors (int4/int8 weight-only\n" +
			"layers pack-quantized, W8A8 layers int-quantized), the tokenizer files, and for static W8A8 a\n" +
			"TensorRT INT8 calibration cache. --data calibrates (activation thresholds, GPTQ Hessians); a\n" +
			"calibration table from `autoq calibrate` can supply the thresholds instead. The directory is\n" +
			"replaced atomically. The target (--target) must load every layer: a plan it cannot load is refused,\n" +
			"naming the layer, the scheme and the rule. Layout and targets: docs/EXPORT.md.\n\n" +
			"--format gguf (or --target gguf) writes one GGUF v3 file for llama.cpp instead: the plan's layers\n" +
			"in llama.cpp's block formats (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k; w16 layers, the embeddings\n" +
			"and lm_head in --full-type), the tokenizer in its metadata. With --data the k-quant grids are\n" +
			"weighted by the inputs' mean squares and GPTQ rounds onto them. docs/GGUF.md.",
		flags: func(fs *pflag.FlagSet) {
			registerInput(fs, &o.Input, modelHelp, flagCalibTable)
			fs.StringVar(&o.Plan, "plan", "", "plan file from autoq plan (required)")
			fs.StringVar(&o.ScaleDType, "scale-dtype", "auto", "dtype of weight-only layers' scales: auto (the model's 16-bit dtype; F16 for an F32 model, whose config then says float16), f16, bf16 or f32")
			registerTarget(fs, &o.Target, "", " (default: the plan's, else vllm; gguf with --format gguf)")
			fs.StringVar(&o.Format, "format", "compressed-tensors", "output format: compressed-tensors (a directory) or gguf (one file for llama.cpp)")
			fs.StringVar(&o.FullType, "full-type", "auto", "gguf: type of the tensors kept in full precision (embeddings, lm_head, w16 layers): auto (the model's 16-bit dtype; F16 for an F32 model), f32, f16 or bf16")
			registerTRT(fs, &o.TRTOptions)
			fs.StringVar(&o.Out, "out", "", "output directory, or file for --format gguf (required)")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.BoolVar(&asJSON, "json", false, "print a JSON summary")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			rep, err := autoquant.Export(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
