package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var (
		o      autoquant.BenchModelOptions
		asJSON bool
	)
	register(&command{
		name:    "bench model",
		noArgs:  true,
		summary: "prefill latency of the whole model, full precision (F32 on the CPU) vs quantized, per batch x sequence length",
		usage: "--model PATH [--scheme w8a8,w4g32] [--batch 1,4] [--seq 64,256] [flags]\n\n" +
			"Each point runs a prefill of batch sequences of seq deterministic pseudo-random tokens; the time is\n" +
			"the median of --runs runs after --warmup untimed ones. --kernel int runs quantized layers on the\n" +
			"integer reference kernels (W8A8: int8 x int8 -> int32; W4A16: int4 weights); --kernel fake runs\n" +
			"the fake-quantized float layers.\n\n" +
			"--device cuda[:N] times the GPU model runner instead: F16 (cuBLAS) baseline vs the W8A8 / W4A16\n" +
			"kernels (layers whose shapes the kernels cannot take run as dequantized F16; the paths are reported),\n" +
			"median device time from CUDA events. Without --model it benchmarks a synthetic 2-layer model with\n" +
			"Llama-7B shapes (dim 4096, MLP 11008, 32 heads, vocab 32000) generated on the GPU.\n\n" +
			"--gguf A.gguf,B.gguf times the GGUF files in llama.cpp instead (scripts/llamacpp/install.sh):\n" +
			"prompt processing of --prompt tokens in one batch and greedy generation of --generate tokens, best\n" +
			"of --runs runs, each file against the first (e.g. an F16 file first).",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Model, "model", "", modelHelp)
			fs.StringSliceVar(&o.Schemes, "scheme", []string{"w8a8", "w4g32"}, "quantization schemes (see autoq eval --help)")
			fs.StringVar(&o.Batches, "batch", "1,4", "comma-separated batch sizes")
			fs.StringVar(&o.Seqs, "seq", "64,256", "comma-separated sequence lengths")
			fs.IntVar(&o.Runs, "runs", 5, "timed runs per point (the median is reported)")
			fs.IntVar(&o.Warmup, "warmup", 1, "untimed runs per point")
			fs.StringVar(&o.Kernel, "kernel", "int", "quantized layers: int (integer reference kernels) or fake (fake-quantized float)")
			fs.StringVar(&o.Search, "search", "max", "weight scale search: max, percentile or mse")
			fs.StringSliceVar(&o.GGUF, "gguf", nil, "GGUF files to time in llama.cpp (the first is the baseline)")
			fs.IntVar(&o.Prompt, "prompt", 256, "--gguf: prompt tokens (one batch)")
			fs.IntVar(&o.Generate, "generate", 128, "--gguf: generated tokens")
			fs.IntVar(&o.Threads, "threads", 1, "--gguf: llama.cpp threads (0: its default)")
			fs.BoolVar(&asJSON, "json", false, "print the results as JSON")
			fs.StringVar(&o.Plot, "plot", "", "also draw latency per point into a PNG `FILE`")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.StringVar(&o.Device, "device", "auto", "auto (a GPU when there is one), cpu, cuda or cuda:N; on a GPU: F16 (cuBLAS) vs the W8A8/W4A16 kernels timed with CUDA events; without --model a synthetic 2-layer Llama-7B-shaped model generated on the GPU")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			rep, err := autoquant.BenchModel(e.job(), o)
			return e.report(asJSON, rep, err)
		},
	})
}
