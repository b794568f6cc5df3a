package bench

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/autoq/autoq/internal/atomicfile"
)

// PlotSpeedup draws speedup over the baseline against M (log scale), one line per
// (shape, kernel), into a PNG at path (written atomically).
func (r *GemmReport) PlotSpeedup(path string) error {
	p := plot.New()
	where := "CPU backend"
	if r.Device.Kind == "cuda" {
		where = r.Device.Name
	}
	p.Title.Text = fmt.Sprintf("GEMM speedup over %s (%s)", r.Baseline, where)
	p.X.Label.Text = "M (tokens)"
	p.Y.Label.Text = "speedup"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	type key struct{ shape, kernel string }
	series := map[key]plotter.XYs{}
	var order []key
	for _, pt := range r.Points {
		if pt.Kernel == r.Baseline || pt.Speedup <= 0 {
			continue
		}
		k := key{pt.Shape, pt.Kernel}
		if _, ok := series[k]; !ok {
			order = append(order, k)
		}
		series[k] = append(series[k], plotter.XY{X: float64(pt.M), Y: pt.Speedup})
	}
	if len(order) == 0 {
		return fmt.Errorf("plot %s: no points to draw", path)
	}
	var lines []any
	for _, k := range order {
		lines = append(lines, k.shape+" "+k.kernel, series[k])
	}
	return WriteLinePlot(p, path, 11*vg.Inch, 7*vg.Inch, lines...)
}

// WriteLinePlot adds lines to p (plotutil.AddLinePoints' arguments: a name, then its
// plotter.XYs, for each line) and writes p as a w x h PNG to path, atomically.
func WriteLinePlot(p *plot.Plot, path string, w, h vg.Length, lines ...any) error {
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := wt.WriteTo(f)
		return err
	})
}
