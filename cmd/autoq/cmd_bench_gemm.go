package main

import (
	"strings"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/bench"
	"github.com/spf13/pflag"
)

func init() {
	var f autoquant.BenchGEMMOptions
	register(&command{
		name:    "bench gemm",
		noArgs:  true,
		summary: "time the quantized GEMM kernels (W8A8, W4A16) against the FP16 baseline over Llama shapes and token counts",
		usage:   "[flags]",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.Preset, "preset", "", "shape preset: "+strings.Join(bench.PresetNames(), ", ")+" (default llama2-7b on a GPU, cpu-small on the CPU)")
			fs.StringArrayVar(&f.Shapes, "shape", nil, "a weight shape K,N (inputs,outputs); repeatable; replaces the preset")
			fs.StringVar(&f.Ms, "m", "", "comma-separated token counts M (default 1,2,4,...,4096 on a GPU, 1,4,16,64 on the CPU)")
			fs.IntVar(&f.Iters, "iters", 0, "timed iterations per point (default 50 on a GPU, 3 on the CPU)")
			fs.IntVar(&f.Warmup, "warmup", -1, "untimed warm-up iterations per point (default 10 on a GPU, 1 on the CPU)")
			fs.StringVar(&f.Device, "device", "auto", deviceHelp)
			fs.StringVar(&f.JSON, "json", "", "also write the results as JSON to `FILE`")
			fs.StringVar(&f.CSV, "csv", "", "also write the results as CSV to `FILE`")
			fs.StringVar(&f.Plot, "plot", "", "also draw speedup vs M per shape into a PNG `FILE`")
			fs.BoolVar(&f.Force, "force", false, forceHelp)
			fs.BoolVar(&f.Quick, "quick", false, "reduced sweep for a quick GPU check: M 1,16,128,1024 (shapes: --preset, default llama2-7b), 50 iterations, 50 s timeout (on the CPU: the CPU defaults with the 50 s timeout)")
			fs.DurationVar(&f.Timeout, "timeout", 0, "stop starting new points after this long, reporting what was measured (default 10m; --quick 50s)")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			return autoquant.BenchGEMM(e.job(), f, e.stdout)
		},
	})
}
