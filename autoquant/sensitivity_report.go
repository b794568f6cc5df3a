package autoquant

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/plan"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// SensitivityReport is the result of Sensitivity: the sensitivity file's contents.
type SensitivityReport struct{ *plan.Sensitivity }

// MarshalJSON writes the sensitivity file itself.
func (r *SensitivityReport) MarshalJSON() ([]byte, error) { return jsonOf(r.Sensitivity) }

// WriteTable prints every (layer, scheme) damage, worst first.
func (r *SensitivityReport) WriteTable(w io.Writer) { printSensitivity(w, r.Sensitivity) }

type sensRow struct {
	layer, scheme string
	d             plan.Damage
}

func sortedSensitivity(s *plan.Sensitivity) []sensRow {
	var rows []sensRow
	for _, l := range s.Layers {
		for _, sc := range s.Schemes {
			rows = append(rows, sensRow{l.Name, sc, l.Damage[sc]})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].d.KL > rows[j].d.KL })
	return rows
}

func printSensitivity(w io.Writer, s *plan.Sensitivity) {
	fmt.Fprintf(w, "baseline perplexity %.4f on %d tokens; damage of quantizing one layer alone, worst first\n\n", s.BaselinePPL, s.Tokens)
	fmt.Fprintf(w, "%4s  %-36s %-9s %12s %12s %10s\n", "rank", "layer", "scheme", "KL", "perplexity", "change")
	for i, r := range sortedSensitivity(s) {
		fmt.Fprintf(w, "%4d  %-36s %-9s %12.6f %12.4f %+9.3f%%\n", i+1, r.layer, r.scheme, r.d.KL, r.d.PPL, 100*r.d.PPLDelta)
	}
}

// plotSensitivity draws grouped bars: one group per layer (forward order), one bar per
// scheme, on a logarithmic KL axis (bars rise from the smallest decade present).
func plotSensitivity(s *plan.Sensitivity, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Damage of quantizing one layer alone (KL vs full precision, %d tokens)", s.Tokens)
	p.Y.Label.Text = "KL (nats/token), log scale"
	p.X.Label.Text = "layer"
	floor := 0.0
	for _, l := range s.Layers {
		for _, sc := range s.Schemes {
			floor = math.Min(floor, math.Floor(math.Log10(math.Max(l.Damage[sc].KL, 1e-9))))
		}
	}
	n := len(s.Schemes)
	w := vg.Points(4)
	for i, sc := range s.Schemes {
		vals := make(plotter.Values, len(s.Layers))
		for j, l := range s.Layers {
			vals[j] = math.Log10(math.Max(l.Damage[sc].KL, 1e-9)) - floor
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.Legend.Add(sc, bars)
	}
	p.Y.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		var ts []plot.Tick
		for d := 0.0; d <= max+1e-9; d++ {
			ts = append(ts, plot.Tick{Value: d, Label: fmt.Sprintf("1e%d", int(d+floor))})
		}
		return ts
	})
	names := make([]string, len(s.Layers))
	for j, l := range s.Layers {
		names[j] = shortLayerName(l.Name)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = -1.2
	width := vg.Length(max(160, 4*len(s.Layers)*(n+1))) * vg.Millimeter
	wt, err := p.WriterTo(width, 12*vg.Centimeter, "png")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := wt.WriteTo(f)
		return err
	})
}

// shortLayerName turns model.layers.3.self_attn.q_proj into 3.q.
func shortLayerName(n string) string {
	n = strings.TrimPrefix(n, "model.layers.")
	n = strings.NewReplacer("self_attn.", "", "mlp.", "", "_proj", "").Replace(n)
	return n
}
