package autoquant

import (
	"io"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/internal/progress"
)

// BenchKernelsOptions configures BenchKernels (`autoq bench kernels`).
type BenchKernelsOptions struct {
	Device string
	JSON   string // also write the results as JSON here
	Runs   int    // timed runs per kernel (0: default)
	Warmup int    // untimed runs per kernel (-1: default)
	Full   bool   // the 7B sizes on the CPU too
	Small  bool   // the reduced sizes on a GPU too
	Force  bool   // overwrite an existing JSON file
}

// BenchKernels is `autoq bench kernels`: the quantization and calibration kernels in GB/s
// against the device's memory bandwidth; the table goes to out.
func BenchKernels(env Env, o BenchKernelsOptions, out io.Writer) error {
	if o.Full && o.Small {
		return usagef("--full and --small exclude each other")
	}
	if o.Runs < 0 {
		return usagef("--runs must be positive")
	}
	if err := checkOutputs(env, o.Force, nil, outFile("--json", o.JSON)); err != nil {
		return err
	}
	b, fallback, err := backend.Open(o.Device)
	if err != nil {
		return deviceErr(err)
	}
	defer b.Close()
	if fallback != "" {
		env.logf("autoq bench kernels: using the CPU (%s)\n", fallback)
	}
	gpu := b.Info().Kind == "cuda"
	cfg := bench.KernelConfig{FullSizes: (gpu && !o.Small) || o.Full, Runs: o.Runs, Warmup: o.Warmup}
	if cfg.Runs == 0 {
		cfg.Runs = map[bool]int{true: 10, false: 3}[gpu]
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = map[bool]int{true: 2, false: 1}[gpu]
	}
	var bar *progress.Bar
	cfg.Progress = func(i, n int, name string) {
		if bar == nil {
			bar = progress.New(env.bars(), "bench kernels", int64(n), "kernels")
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
	if err := rep.WriteTable(out); err != nil {
		return err
	}
	if o.JSON != "" {
		return writeRendered(o.JSON, rep.WriteJSON)
	}
	return nil
}
