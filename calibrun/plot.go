package calibrun

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/atomicfile"
)

// displayBars is about how many bars a histogram chart shows: the 2048 calibration bins
// are summed in power-of-two groups (exact: the bin edges nest) so the shape stays legible.
const displayBars = 256

// roundsChartMax caps the lines of the rounds chart when nothing is unsettled (then the
// tensors with the largest last change are drawn).
const roundsChartMax = 8

// ChartsKind marks a directory of calibration charts (internal/atomicfile's output marker).
const ChartsKind = "calibration charts"

// Plot writes the directory dir (atomically, replacing a previous charts directory): one
// histogram chart per tensor group (hist-<name>.png; only the top most clipped groups when
// top > 0) and rounds.png, the amax trajectory of the unsettled tensors. It returns the
// files written (their final paths).
func Plot(r *Result, rep *Report, dir string, top int) ([]string, error) {
	order := make([]int, len(r.Groups))
	for i := range order {
		order[i] = i
	}
	if top > 0 {
		sort.SliceStable(order, func(a, b int) bool { return rep.Tensors[order[a]].ClipRate > rep.Tensors[order[b]].ClipRate })
		order = order[:min(top, len(order))]
		sort.Ints(order)
	}
	var files []string
	err := atomicfile.Dir(dir, ChartsKind, func(tmp string) error {
		for _, gi := range order {
			if rep.Tensors[gi].Empty {
				continue
			}
			name := "hist-" + r.Groups[gi].Name + ".png"
			if err := plotHistogram(r.Hists[gi], rep.Tensors[gi], r.Opt.Calib, filepath.Join(tmp, name)); err != nil {
				return err
			}
			files = append(files, filepath.Join(dir, name))
		}
		if err := plotRounds(r, rep, filepath.Join(tmp, "rounds.png")); err != nil {
			return err
		}
		files = append(files, filepath.Join(dir, "rounds.png"))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

func plotHistogram(h *calib.Histogram, t TensorReport, chosen calib.Options, path string) error {
	lastBin := 0
	for i, c := range h.Counts {
		if c > 0 {
			lastBin = i
		}
	}
	group := 1
	for (lastBin+1)/group > displayBars {
		group *= 2
	}
	width := math.Ldexp(float64(group), h.Exp)
	var steps plotter.XYs
	const floor = 0.5 // zero counts are drawn at the floor of the log axis
	maxCount := 1.0
	for g := 0; g*group <= lastBin; g++ {
		var n uint64
		for _, c := range h.Counts[g*group : min((g+1)*group, calib.NumBins)] {
			n += c
		}
		y := max(float64(n), floor)
		maxCount = max(maxCount, y)
		x0 := float64(g) * width
		steps = append(steps, plotter.XY{X: x0, Y: y}, plotter.XY{X: x0 + width, Y: y})
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: |x| histogram (%d values, bin width %.3g)", label(t), h.Count, width)
	p.X.Label.Text = "|x|"
	p.Y.Label.Text = "count (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Two decades of headroom above the bars hold the legend; threshold lines stop below it.
	top, lineTop := maxCount*100, maxCount*3
	p.Y.Min, p.Y.Max = floor, top
	p.Add(plotter.NewGrid())
	fill, err := plotter.NewLine(steps)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	fill.FillColor = color.RGBA{R: 150, G: 170, B: 200, A: 255}
	fill.Color = color.RGBA{R: 60, G: 80, B: 120, A: 255}
	p.Add(fill)

	marks := []struct {
		m      calib.Method
		colour color.RGBA
		dash   []vg.Length
	}{
		{calib.MethodMax, color.RGBA{R: 200, A: 255}, nil},
		{calib.MethodPercentile, color.RGBA{R: 230, G: 140, A: 255}, []vg.Length{vg.Points(6), vg.Points(3)}},
		{calib.MethodMSE, color.RGBA{G: 150, A: 255}, []vg.Length{vg.Points(2), vg.Points(2)}},
		{calib.MethodEntropy, color.RGBA{R: 120, B: 200, A: 255}, []vg.Length{vg.Points(8), vg.Points(3), vg.Points(2), vg.Points(3)}},
	}
	xmax := float64(lastBin+1) * math.Ldexp(1, h.Exp)
	for _, mk := range marks {
		opt := chosen
		opt.Method = mk.m
		res, err := calib.Compute(h, opt)
		if err != nil {
			return fmt.Errorf("plot %s: %s threshold: %w", path, mk.m, err)
		}
		a := float64(res.Amax)
		xmax = max(xmax, a)
		ln, err := plotter.NewLine(plotter.XYs{{X: a, Y: floor}, {X: a, Y: lineTop}})
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		ln.Color, ln.Dashes, ln.Width = mk.colour, mk.dash, vg.Points(2)
		name := mk.m.String()
		if mk.m == calib.MethodPercentile {
			name = fmt.Sprintf("percentile %g%%", opt.Percentile)
		}
		clip := clipRate(h, res)
		entry := fmt.Sprintf("%s: %.4g (clips %.3g%%)", name, a, 100*clip)
		if mk.m == chosen.Method {
			entry += " [chosen]"
		}
		p.Add(ln)
		p.Legend.Add(entry, ln)
	}
	p.X.Min, p.X.Max = 0, xmax*1.03
	p.X.Tick.Marker = fixedTicks{}
	p.Legend.Top = true
	return savePNG(p, path, 10*vg.Inch, 5*vg.Inch)
}

func plotRounds(r *Result, rep *Report, path string) error {
	var pick []int
	title := "amax per round / final amax: unsettled tensors"
	for gi, t := range rep.Tensors {
		if t.LastChange != nil && !t.Settled {
			pick = append(pick, gi)
		}
	}
	if len(pick) == 0 {
		title = fmt.Sprintf("amax per round / final amax: converged (the %d largest last changes)", roundsChartMax)
		for gi, t := range rep.Tensors {
			if !t.Empty {
				pick = append(pick, gi)
			}
		}
		change := func(gi int) float64 {
			if c := rep.Tensors[gi].LastChange; c != nil {
				return *c
			}
			return 0
		}
		sort.SliceStable(pick, func(a, b int) bool { return change(pick[a]) > change(pick[b]) })
		pick = pick[:min(roundsChartMax, len(pick))]
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "tokens seen (cumulative, end of round)"
	p.Y.Label.Text = "amax / amax after the last round"
	p.Add(plotter.NewGrid())
	var args []any
	for _, gi := range pick {
		t := rep.Tensors[gi]
		final := float64(t.Amax)
		if final <= 0 {
			continue
		}
		var pts plotter.XYs
		for ri, rp := range t.Rounds {
			if rp.Amax > 0 {
				pts = append(pts, plotter.XY{X: float64(r.Rounds[ri].Tokens), Y: float64(rp.Amax) / final})
			}
		}
		args = append(args, label(t), pts)
	}
	if len(args) > 0 {
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
	}
	// The tolerance band around 1 shows what "settled" means.
	for _, y := range []float64{1 - rep.Settings.Tolerance, 1 + rep.Settings.Tolerance} {
		pts := plotter.XYs{{X: 0, Y: y}, {X: float64(rep.Coverage.Tokens), Y: y}}
		ln, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		ln.Color, ln.Dashes = color.Gray{Y: 120}, []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(ln)
	}
	p.Legend.Add(fmt.Sprintf("tolerance ±%g%%", 100*rep.Settings.Tolerance), &plotter.Line{LineStyle: draw.LineStyle{Color: color.Gray{Y: 120}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(4)}}})
	p.Legend.Top = true
	// The x range extends past the data so the legend (top right) does not cover lines.
	p.X.Min, p.X.Max = 0, float64(rep.Coverage.Tokens)*1.5
	p.Y.Tick.Marker = fixedTicks{}
	// A margin above and below keeps the extreme markers off the frame.
	pad := 0.06 * max(p.Y.Max-p.Y.Min, 2*rep.Settings.Tolerance)
	p.Y.Min, p.Y.Max = p.Y.Min-pad, p.Y.Max+pad
	return savePNG(p, path, 11*vg.Inch, 6*vg.Inch)
}

func savePNG(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := wt.WriteTo(f)
		return err
	})
}

// fixedTicks labels a ratio axis with evenly spaced ticks printed with enough decimals
// to tell them apart (gonum's default labels can round neighbours to the same text).
type fixedTicks struct{}

func (fixedTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) {
		return []plot.Tick{{Value: lo, Label: fmt.Sprintf("%.3g", lo)}}
	}
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 8 {
			step *= m
			break
		}
	}
	dec := max(0, int(-math.Floor(math.Log10(step))))
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.*f", dec, v)})
	}
	return ts
}
