package main

import (
	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

func init() {
	var o autoquant.BenchKernelsOptions
	register(&command{
		name:   "bench kernels",
		noArgs: true,
		summary: "time the quantization and calibration kernels (scales, int8/int4 quantize, MSE search, histograms, " +
			"threshold search) in GB/s against the device's memory bandwidth",
		usage: "[flags]\n\nOn a GPU the sizes are a 7B model's (4096x4096 and 11008x4096 F16 weights, 2^28 F16 activations,\n" +
			"224 histograms) and kernels are timed with CUDA events, inputs already in device memory. On the CPU\n" +
			"the sizes are smaller (said in the header) and the CPU backend is timed with the wall clock.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.Device, "device", "auto", deviceHelp)
			fs.StringVar(&o.JSON, "json", "", "also write the results as JSON to `FILE`")
			fs.BoolVar(&o.Force, "force", false, forceHelp)
			fs.IntVar(&o.Runs, "runs", 0, "timed runs per kernel, median reported (default 10 on a GPU, 3 on the CPU)")
			fs.IntVar(&o.Warmup, "warmup", -1, "untimed warm-up runs per kernel (default 2 on a GPU, 1 on the CPU)")
			fs.BoolVar(&o.Full, "full", false, "use the 7B sizes on the CPU too (slow)")
			fs.BoolVar(&o.Small, "small", false, "use the reduced sizes on a GPU too")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			return autoquant.BenchKernels(e.job(), o, e.stdout)
		},
	})
}
