package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/plan"
)

// SensitivityOptions configures Sensitivity (`autoq sensitivity`).
type SensitivityOptions struct {
	Input
	Schemes string // comma-separated candidate schemes
	Out     string // sensitivity file to write (for autoq plan)
	Plot    string // PNG of damage per layer and scheme
	Force   bool   // overwrite existing output files
}

// Sensitivity is `autoq sensitivity`: each (layer, scheme) quantized alone and measured
// against the cached full-precision logits (KL, perplexity change).
func Sensitivity(env Env, f SensitivityOptions) (*SensitivityReport, error) {
	schemes, err := ParseRecipes(f.Schemes)
	if err != nil {
		return nil, usagef("--schemes: %v", err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	if err := checkOutputs(env, f.Force, []string{f.Model, f.Data, f.Tokenizer, f.CalibTable}, outFile("--out", f.Out), outFile("--plot", f.Plot)); err != nil {
		return nil, err
	}
	if _, err := openDevice(env, "sensitivity", f.Device); err != nil {
		return nil, err
	}
	src, d, err := f.open(false, dataNeed{sens: true})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	qz, err := f.quantizers(env, src, d, schemes)
	if err != nil {
		return nil, err
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, err
	}
	bar := progress.New(env.bars(), "sensitivity", int64(len(m.LinearNames())*len(schemes)), "runs")
	s, err := MeasureSensitivity(m, d.Sens, SensOptions{Ctx: env.Ctx, Schemes: schemes, Quantizers: qz, Batch: f.Batch,
		BOS: f.bos(src), Progress: func(int, int) { bar.Add(1) }})
	bar.Done()
	if err != nil {
		return nil, err
	}
	s.Model, s.Data, s.DType = f.Model, f.Data, src.DType().String()
	if f.Out != "" {
		if err := plan.WriteSensitivity(f.Out, s); err != nil {
			return nil, err
		}
	}
	if f.Plot != "" {
		if err := plotSensitivity(s, f.Plot); err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
	}
	return &SensitivityReport{s}, nil
}
