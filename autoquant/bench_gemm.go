package autoquant

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/internal/progress"
)

// BenchGEMMOptions configures BenchGEMM (`autoq bench gemm`).
type BenchGEMMOptions struct {
	Preset  string   // shape preset (default llama2-7b on a GPU, cpu-small on the CPU)
	Shapes  []string // "K,N" weight shapes instead of the preset
	Ms      string   // comma-separated token counts
	Iters   int      // timed iterations per point (0: default)
	Warmup  int      // untimed iterations per point (-1: default)
	Device  string
	JSON    string // also write JSON here
	CSV     string // also write CSV here
	Plot    string // speedup chart (PNG)
	Quick   bool   // the reduced GPU sweep (M 1, 16, 128, 1024; still 50 timed iterations a point)
	Timeout time.Duration
	Force   bool // overwrite existing output files
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
func benchGemmConfig(f *BenchGEMMOptions, gpu bool) (bench.GemmConfig, error) {
	cfg := bench.GemmConfig{Iters: f.Iters, Warmup: f.Warmup, Timeout: f.Timeout}
	preset := f.Preset
	switch {
	case preset != "":
	case gpu:
		preset = "llama2-7b"
	default:
		preset = "cpu-small"
	}
	if len(f.Shapes) > 0 {
		if f.Preset != "" {
			return cfg, usagef("--shape and --preset exclude each other")
		}
		for _, s := range f.Shapes {
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
	case f.Ms != "":
		ms, err := parseMs(f.Ms)
		if err != nil {
			return cfg, usagef("%v", err)
		}
		cfg.Ms = ms
	case f.Quick && gpu:
		cfg.Ms = bench.QuickGemmMs
	case gpu:
		cfg.Ms = bench.DefaultGemmMs
	default:
		cfg.Ms = bench.CPUGemmMs
	}
	if cfg.Iters == 0 {
		cfg.Iters = map[bool]int{true: 50, false: 3}[gpu]
	}
	if cfg.Iters < 1 {
		return cfg, usagef("--iters %d: need at least 1", cfg.Iters)
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = map[bool]int{true: 10, false: 1}[gpu]
		if f.Quick && gpu {
			cfg.Warmup = 5
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
		if f.Quick {
			cfg.Timeout = 50 * time.Second
		}
	}
	return cfg, nil
}

// BenchGEMM is `autoq bench gemm`: the quantized GEMM kernels against the FP16 baseline
// over Llama shapes and token counts. The table goes to out; JSON, CSV and a chart to
// files. What was measured before a timeout or error is still reported.
func BenchGEMM(env Env, f BenchGEMMOptions, out io.Writer) error {
	if err := checkOutputs(env, f.Force, nil, outFile("--json", f.JSON), outFile("--csv", f.CSV), outFile("--plot", f.Plot)); err != nil {
		return err
	}
	_, timer, fallback, err := backend.OpenGEMM(f.Device)
	if err != nil {
		return deviceErr(err)
	}
	defer timer.Close()
	gpu := timer.Info().Kind == "cuda"
	cfg, err := benchGemmConfig(&f, gpu)
	if err != nil {
		return err
	}
	bar := progress.New(env.bars(), "bench gemm", int64(len(cfg.Shapes)*len(cfg.Ms)), "points")
	last := 0
	cfg.Progress = func(done, _ int) { bar.Add(int64(done - last)); last = done }
	rep, err := bench.RunGemm(timer, cfg)
	bar.Done()
	if rep != nil {
		rep.Fallback = fallback
		if werr := writeGemmOutputs(out, &f, rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func writeGemmOutputs(out io.Writer, f *BenchGEMMOptions, rep *bench.GemmReport) error {
	if err := rep.WriteTable(out); err != nil {
		return err
	}
	if f.JSON != "" {
		if err := writeRendered(f.JSON, rep.WriteJSON); err != nil {
			return fmt.Errorf("--json %s: %w", f.JSON, err)
		}
	}
	if f.CSV != "" {
		if err := writeRendered(f.CSV, rep.WriteCSV); err != nil {
			return fmt.Errorf("--csv %s: %w", f.CSV, err)
		}
	}
	if f.Plot != "" && len(rep.Points) > 0 {
		if err := rep.PlotSpeedup(f.Plot); err != nil {
			return fmt.Errorf("--plot %s: %w", f.Plot, err)
		}
	}
	return nil
}
