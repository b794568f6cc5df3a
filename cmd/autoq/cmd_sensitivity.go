package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/pipeline"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/tensor"
	"github.com/spf13/pflag"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// aqInputFlags are the model/data flags shared by sensitivity, export and run.
type aqInputFlags struct {
	model, tokenizer, data string
	seqLen                 int
	calibTokens            int
	sensTokens             int
	evalTokens             int
	calibMethod            string
	int4                   string
	batch                  int
	calibTable             string // sensitivity, export: thresholds from `autoq calibrate`
}

// registerCalibTable adds --calib-table (sensitivity and export).
func (f *aqInputFlags) registerCalibTable(fs *pflag.FlagSet) {
	fs.StringVar(&f.calibTable, "calib-table", "", "calibration table (JSON from autoq calibrate): static activation thresholds instead of calibrating here")
	fs.StringVar(&f.calibTable, "calib", "", "same as --calib-table")
}

// tableAmax reads a calibration table's thresholds by tensor (layer) name.
func tableAmax(path string) (*calib.Table, map[string]float32, error) {
	t, err := calib.ReadTable(path)
	if err != nil {
		return nil, nil, err
	}
	amax := map[string]float32{}
	for _, e := range t.Tensors {
		if !e.Empty {
			amax[e.Name] = e.Amax
		}
	}
	return t, amax, nil
}

func (f *aqInputFlags) register(fs *pflag.FlagSet, modelHelp string) {
	fs.StringVar(&f.model, "model", "", modelHelp)
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer (default: tokenizer.json in a model directory, tok<vocab>.bin beside a llama2.c file)")
	fs.StringVar(&f.data, "data", "", "text file (blank-line separated documents; first half calibrates, second half evaluates) or .jsonl of token ids")
	fs.IntVar(&f.seqLen, "seq-len", 256, "tokens per window")
	fs.IntVar(&f.calibTokens, "calib-tokens", 8192, "calibration tokens (activation thresholds, GPTQ Hessians)")
	fs.IntVar(&f.sensTokens, "sens-tokens", 2048, "sensitivity tokens (calibration split, after the calibration tokens)")
	fs.IntVar(&f.evalTokens, "eval-tokens", 0, "evaluation tokens for the accuracy gate (0: the whole evaluation split)")
	fs.StringVar(&f.calibMethod, "calib-method", "entropy", "activation calibrator for static W8A8: entropy, percentile, mse or max")
	fs.StringVar(&f.int4, "int4", "gptq", "int4 method: gptq (error-compensating, needs calibration) or rtn (round to nearest, MSE clipping)")
	fs.IntVar(&f.batch, "batch", 8, "windows per forward pass")
}

func (f *aqInputFlags) dataOptions() pipeline.DataOptions {
	return pipeline.DataOptions{SeqLen: f.seqLen, CalibTokens: f.calibTokens, SensTokens: f.sensTokens, EvalTokens: f.evalTokens}
}

// open loads the model and data, or the built-in synthetic model and data when allowed
// and no --model is given.
func (f *aqInputFlags) open(allowSynthetic bool) (*pipeline.Source, *pipeline.Data, error) {
	if f.seqLen < 2 || f.calibTokens < 0 || f.sensTokens < 0 || f.evalTokens < 0 || f.batch < 1 {
		return nil, nil, usagef("--seq-len must be >= 2, token counts >= 0, --batch >= 1")
	}
	if f.int4 != "gptq" && f.int4 != "rtn" {
		return nil, nil, usagef("--int4 must be gptq or rtn, not %q", f.int4)
	}
	if _, err := calib.ParseMethod(f.calibMethod); err != nil {
		return nil, nil, usagef("--calib-method: %v", err)
	}
	if f.model == "" {
		if !allowSynthetic {
			return nil, nil, usagef("--model is required")
		}
		if f.data != "" {
			return nil, nil, usagef("--data needs --model (the built-in synthetic model brings its own data)")
		}
		src := pipeline.Synthetic()
		d, err := pipeline.SyntheticData(src, min(f.seqLen, 128), f.dataOptions())
		return src, d, err
	}
	if f.data == "" {
		return nil, nil, usagef("--data is required with --model")
	}
	src, err := pipeline.OpenSource(f.model, f.tokenizer)
	if err != nil {
		return nil, nil, err
	}
	if src.Tok == nil && !strings.EqualFold(strings.ToLower(f.data[max(0, len(f.data)-6):]), ".jsonl") {
		return nil, nil, usagef("no tokenizer found for %s: give --tokenizer", f.model)
	}
	d, err := pipeline.LoadData(f.data, src.Tok, src.Cfg.Vocab, f.dataOptions())
	return src, d, err
}

func (f *aqInputFlags) bos(src *pipeline.Source) int {
	if src.Tok != nil {
		return src.Tok.BOS()
	}
	return 1
}

// quantizers calibrates what the schemes need: activation thresholds when a static W8A8
// scheme is among them, GPTQ Hessians when int4 uses GPTQ.
func (f *aqInputFlags) quantizers(e *env, src *pipeline.Source, d *pipeline.Data, schemes []plan.Choice) (*pipeline.Quantizers, error) {
	qz := &pipeline.Quantizers{ScaleDType: tensor.F16}
	needAmax, need4 := false, false
	for _, c := range schemes {
		needAmax = needAmax || c.Act == plan.ActStatic
		need4 = need4 || (!c.Full && c.Weight.Bits == 4)
	}
	if needAmax && f.calibTable != "" {
		_, amax, err := tableAmax(f.calibTable)
		if err != nil {
			return nil, err
		}
		qz.Amax, needAmax = amax, false
		fmt.Fprintf(e.stderr, "activation thresholds for %d tensors from %s\n", len(amax), f.calibTable)
	}
	if !needAmax && !(need4 && f.int4 == "gptq") {
		return qz, nil
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, err
	}
	if needAmax {
		meth, _ := calib.ParseMethod(f.calibMethod)
		amax, n, err := eval.CalibrateActivations(m, aqWindowSource(d.Calib), calib.DefaultOptions(meth), f.batch)
		if err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
		qz.Amax = amax
		fmt.Fprintf(e.stderr, "calibrated %d activation thresholds (%s) on %d tokens\n", len(amax), f.calibMethod, n)
	}
	if need4 && f.int4 == "gptq" {
		hs, err := collect.Hessians(m, d.Calib, f.batch, nil)
		if err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
		qz.Int4 = pipeline.GPTQ(hs, pipeline.BestGPTQ)
		fmt.Fprintf(e.stderr, "collected GPTQ Hessians for %d layers\n", len(hs))
	}
	return qz, nil
}

// aqWindowSource hands out in-memory windows (eval.Source).
type aqWindows struct {
	ws [][]int
	i  int
}

func aqWindowSource(ws [][]int) *aqWindows { return &aqWindows{ws: ws} }

func (w *aqWindows) Next() ([]int, error) {
	if w.i >= len(w.ws) {
		return nil, io.EOF
	}
	w.i++
	return w.ws[w.i-1], nil
}

func parseChoices(s string) ([]plan.Choice, error) {
	var out []plan.Choice
	for _, p := range strings.Split(s, ",") {
		c, err := plan.ParseChoice(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		if c.Full {
			return nil, fmt.Errorf("w16 needs no measurement (it has no damage)")
		}
		out = append(out, c)
	}
	return out, nil
}

type sensFlags struct {
	in      aqInputFlags
	schemes string
	out     string
	json    bool
	plot    string
}

func init() {
	f := &sensFlags{}
	register(&command{
		name:    "sensitivity",
		summary: "per-layer sensitivity: quantize one layer at a time and measure KL and perplexity change",
		usage: "--model PATH --data FILE [--calib-table calib.json] [--schemes w4g128,w8,w8a8s] --out sens.json [--json] [--plot PNG]\n\n" +
			"Each (layer, scheme) is quantized alone exactly as it would be exported and run over --sens-tokens\n" +
			"held-out tokens; the full-precision logits are computed once and reused, so the cost is one forward\n" +
			"pass of the budget per (layer, scheme). Prints the table sorted by damage (KL, nats per token).",
		flags: func(fs *pflag.FlagSet) {
			f.in.register(fs, "llama2.c .bin file or Hugging Face directory (required)")
			f.in.registerCalibTable(fs)
			fs.StringVar(&f.schemes, "schemes", "w4g128,w8,w8a8s", "comma-separated candidate schemes (w8a8: dynamic per-token activations, w8a8s: static)")
			fs.StringVar(&f.out, "out", "", "sensitivity file to write (JSON, for autoq plan)")
			fs.BoolVar(&f.json, "json", false, "print the sensitivity file to stdout instead of the table")
			fs.StringVar(&f.plot, "plot", "", "also draw damage per layer and scheme into a PNG `FILE`")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("sensitivity takes no arguments, got %q", args)
			}
			return runSensitivity(e, f)
		},
	})
}

func runSensitivity(e *env, f *sensFlags) error {
	schemes, err := parseChoices(f.schemes)
	if err != nil {
		return usagef("--schemes: %v", err)
	}
	src, d, err := f.in.open(false)
	if err != nil {
		return err
	}
	qz, err := f.in.quantizers(e, src, d, schemes)
	if err != nil {
		return err
	}
	m, err := src.NewModel()
	if err != nil {
		return err
	}
	bar := progress.New(e.stderr, "sensitivity", int64(len(m.LinearNames())*len(schemes)), "runs")
	s, err := pipeline.Sensitivity(m, d.Sens, pipeline.SensOptions{Schemes: schemes, Quantizers: qz, Batch: f.in.batch,
		BOS: f.in.bos(src), Progress: func(int, int) { bar.Add(1) }})
	bar.Done()
	if err != nil {
		return err
	}
	s.Model, s.Data = f.in.model, f.in.data
	if f.out != "" {
		if err := plan.WriteSensitivity(f.out, s); err != nil {
			return err
		}
	}
	if f.plot != "" {
		if err := plotSensitivity(s, f.plot); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if f.json {
		return writeReportJSON(e.stdout, s)
	}
	printSensitivity(e.stdout, s)
	return nil
}

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
