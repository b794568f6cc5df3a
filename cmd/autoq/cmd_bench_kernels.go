package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
)

func init() {
	var (
		device, jsonPath string
		runs, warmup     int
		full, small      bool
	)
	register(&command{
		name: "bench kernels",
		summary: "time the quantization and calibration kernels (scales, int8/int4 quantize, MSE search, histograms, " +
			"threshold search) in GB/s against the device's memory bandwidth",
		usage: "[flags]\n\nOn a GPU the sizes are a 7B model's (4096x4096 and 11008x4096 F16 weights, 2^28 F16 activations,\n" +
			"224 histograms) and kernels are timed with CUDA events, inputs already in device memory. On the CPU\n" +
			"the sizes are smaller (said in the header) and the CPU backend is timed with the wall clock.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&device, "device", "auto", "auto, cpu, cuda or cuda:N")
			fs.StringVar(&jsonPath, "json", "", "also write the results as JSON to `FILE`")
			fs.IntVar(&runs, "runs", 0, "timed runs per kernel, median reported (default 10 on a GPU, 3 on the CPU)")
			fs.IntVar(&warmup, "warmup", -1, "untimed warm-up runs per kernel (default 2 on a GPU, 1 on the CPU)")
			fs.BoolVar(&full, "full", false, "use the 7B sizes on the CPU too (slow)")
			fs.BoolVar(&small, "small", false, "use the reduced sizes on a GPU too")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("bench kernels takes no arguments, got %q", args)
			}
			if full && small {
				return usagef("--full and --small exclude each other")
			}
			if runs < 0 {
				return usagef("--runs must be positive")
			}
			b, fallback, err := backend.Open(device)
			if err != nil {
				return err
			}
			defer b.Close()
			if fallback != "" {
				fmt.Fprintf(e.stderr, "autoq bench kernels: using the CPU (%s)\n", fallback)
			}
			gpu := b.Info().Kind == "cuda"
			cfg := bench.KernelConfig{FullSizes: (gpu && !small) || full, Runs: runs, Warmup: warmup}
			if cfg.Runs == 0 {
				cfg.Runs = map[bool]int{true: 10, false: 3}[gpu]
			}
			if cfg.Warmup < 0 {
				cfg.Warmup = map[bool]int{true: 2, false: 1}[gpu]
			}
			var bar *progress.Bar
			cfg.Progress = func(i, n int, name string) {
				if bar == nil {
					bar = progress.New(e.stderr, "bench kernels", int64(n), "kernels")
				}
				if i > 0 {
					bar.Add(1)
				}
			}
			rep, err := bench.RunKernels(b, cfg)
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			if err := rep.WriteTable(e.stdout); err != nil {
				return err
			}
			if jsonPath != "" {
				var buf bytes.Buffer
				if err := rep.WriteJSON(&buf); err != nil {
					return err
				}
				if err := atomicfile.WriteFile(jsonPath, buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
