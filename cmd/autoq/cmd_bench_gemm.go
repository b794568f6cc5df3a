package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
)

type benchGemmFlags struct {
	preset  string
	shapes  []string
	ms      string
	iters   int
	warmup  int
	device  string
	json    string
	csv     string
	plot    string
	quick   bool
	timeout time.Duration
}

func init() {
	var f benchGemmFlags
	register(&command{
		name:    "bench gemm",
		summary: "time the quantized GEMM kernels (W8A8, W4A16) against the FP16 baseline over Llama shapes and token counts",
		usage:   "[flags]",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.preset, "preset", "", "shape preset: "+strings.Join(bench.PresetNames(), ", ")+" (default llama2-7b on a GPU, cpu-small on the CPU)")
			fs.StringArrayVar(&f.shapes, "shape", nil, "a weight shape K,N (inputs,outputs); repeatable; replaces the preset")
			fs.StringVar(&f.ms, "m", "", "comma-separated token counts M (default 1,2,4,...,4096 on a GPU, 1,4,16,64 on the CPU)")
			fs.IntVar(&f.iters, "iters", 0, "timed iterations per point (default 50 on a GPU, 3 on the CPU)")
			fs.IntVar(&f.warmup, "warmup", -1, "untimed warm-up iterations per point (default 10 on a GPU, 1 on the CPU)")
			fs.StringVar(&f.device, "device", "auto", "auto, cpu, cuda or cuda:N")
			fs.StringVar(&f.json, "json", "", "also write the results as JSON to `FILE`")
			fs.StringVar(&f.csv, "csv", "", "also write the results as CSV to `FILE`")
			fs.StringVar(&f.plot, "plot", "", "also draw speedup vs M per shape into a PNG `FILE`")
			fs.BoolVar(&f.quick, "quick", false, "reduced sweep for a quick GPU check: llama2-7b shapes, M 1,16,128,1024, 10 iterations, 50 s timeout (on the CPU: the CPU defaults with the 50 s timeout)")
			fs.DurationVar(&f.timeout, "timeout", 0, "stop starting new points after this long, reporting what was measured (default 10m; --quick 50s)")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("bench gemm takes no arguments, got %q", args)
			}
			return runBenchGemm(e, &f)
		},
	})
}

func parseMs(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("--m %q: %q is not a positive integer", s, p)
		}
		out = append(out, v)
	}
	return out, nil
}

// benchGemmConfig turns the flags into a sweep for a GPU (gpu) or the CPU backend.
func benchGemmConfig(f *benchGemmFlags, gpu bool) (bench.GemmConfig, error) {
	cfg := bench.GemmConfig{Iters: f.iters, Warmup: f.warmup, Timeout: f.timeout}
	preset := f.preset
	switch {
	case preset != "":
	case gpu:
		preset = "llama2-7b"
	default:
		preset = "cpu-small"
	}
	if len(f.shapes) > 0 {
		if f.preset != "" {
			return cfg, usagef("--shape and --preset exclude each other")
		}
		for _, s := range f.shapes {
			sh, err := bench.ParseShape(s)
			if err != nil {
				return cfg, usagef("--shape: %v", err)
			}
			cfg.Shapes = append(cfg.Shapes, sh)
		}
	} else {
		shapes, ok := bench.GemmPresets[preset]
		if !ok {
			return cfg, usagef("unknown --preset %q (have %s)", preset, strings.Join(bench.PresetNames(), ", "))
		}
		cfg.Shapes = shapes
	}
	switch {
	case f.ms != "":
		ms, err := parseMs(f.ms)
		if err != nil {
			return cfg, usagef("%v", err)
		}
		cfg.Ms = ms
	case f.quick && gpu:
		cfg.Ms = bench.QuickGemmMs
	case gpu:
		cfg.Ms = bench.DefaultGemmMs
	default:
		cfg.Ms = bench.CPUGemmMs
	}
	if cfg.Iters == 0 {
		cfg.Iters = map[bool]int{true: 50, false: 3}[gpu]
		if f.quick && gpu {
			cfg.Iters = 10
		}
	}
	if cfg.Iters < 1 {
		return cfg, usagef("--iters %d: need at least 1", cfg.Iters)
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = map[bool]int{true: 10, false: 1}[gpu]
		if f.quick && gpu {
			cfg.Warmup = 3
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
		if f.quick {
			cfg.Timeout = 50 * time.Second
		}
	}
	return cfg, nil
}

func runBenchGemm(e *env, f *benchGemmFlags) error {
	_, timer, fallback, err := backend.OpenGEMM(f.device)
	if err != nil {
		return err
	}
	defer timer.Close()
	gpu := timer.Info().Kind == "cuda"
	cfg, err := benchGemmConfig(f, gpu)
	if err != nil {
		return err
	}
	bar := progress.New(e.stderr, "bench gemm", int64(len(cfg.Shapes)*len(cfg.Ms)), "points")
	last := 0
	cfg.Progress = func(done, _ int) { bar.Add(int64(done - last)); last = done }
	rep, err := bench.RunGemm(timer, cfg)
	bar.Done()
	if rep != nil {
		rep.Fallback = fallback
		if werr := writeGemmOutputs(e, f, rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func writeGemmOutputs(e *env, f *benchGemmFlags, rep *bench.GemmReport) error {
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if f.json != "" {
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.json, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--json %s: %w", f.json, err)
		}
	}
	if f.csv != "" {
		var b bytes.Buffer
		if err := rep.WriteCSV(&b); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.csv, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--csv %s: %w", f.csv, err)
		}
	}
	if f.plot != "" && len(rep.Points) > 0 {
		if err := rep.PlotSpeedup(f.plot); err != nil {
			return fmt.Errorf("--plot %s: %w", f.plot, err)
		}
	}
	return nil
}
