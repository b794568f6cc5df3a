package autoquant

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// BenchModelOptions configures BenchModel (`autoq bench model`).
type BenchModelOptions struct {
	Model   string   // llama2.c .bin or HF directory ("" on a GPU: synthetic Llama-7B shapes, 2 layers)
	Schemes []string // quantization schemes (eval's names)
	Batches string   // comma-separated batch sizes
	Seqs    string   // comma-separated sequence lengths
	Runs    int      // timed runs per point (median reported)
	Warmup  int
	Kernel  string // int (integer reference kernels) or fake (fake-quantized float), CPU only
	Search  string
	Plot    string // PNG of latency per point
	Device  string // cpu, cuda[:N] or auto
	Force   bool   // overwrite an existing chart
	// GGUF files are benchmarked in llama.cpp instead (BenchGGUF): prompt processing of
	// Prompt tokens and generation of Generate tokens on Threads threads, best of Runs.
	GGUF             []string
	Prompt, Generate int
	Threads          int
}

// BenchVariant is one scheme at one point.
type BenchVariant struct {
	Scheme       string  `json:"scheme"`
	MedianMs     float64 `json:"median_ms"`
	MinMs        float64 `json:"min_ms"`
	MaxMs        float64 `json:"max_ms"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	Speedup      float64 `json:"speedup_vs_fp32"`
	// WithinNoise: the variant's runs overlap the baseline's, so the speedup is not a
	// result (printed with "~").
	WithinNoise bool `json:"within_noise,omitempty"`
}

// newVariant builds a point's row from its timing and the baseline's (the first row).
func (p *BenchPoint) newVariant(scheme string, t Timing, tokens int) BenchVariant {
	v := BenchVariant{Scheme: scheme, MedianMs: t.Median, MinMs: t.Min, MaxMs: t.Max, TokensPerSec: float64(tokens) / (t.Median / 1000), Speedup: 1}
	if len(p.Variants) > 0 {
		b := p.Variants[0]
		v.Speedup = b.MedianMs / t.Median
		v.WithinNoise = !t.Distinct(Timing{Median: b.MedianMs, Min: b.MinMs, Max: b.MaxMs})
	}
	return v
}

// BenchPoint is one batch x sequence length.
type BenchPoint struct {
	Batch    int            `json:"batch"`
	Seq      int            `json:"seq"`
	Variants []BenchVariant `json:"variants"` // fp32 first
}

// BenchModelReport is the result of BenchModel.
type BenchModelReport struct {
	Model  string       `json:"model"`
	Device string       `json:"device"`
	Kernel string       `json:"kernel"`
	Runs   int          `json:"runs"`
	Points []BenchPoint `json:"points"`
	// GPU runs: the baseline the speedups refer to (fp16) and each variant's kernel paths.
	Baseline string            `json:"baseline,omitempty"`
	Paths    map[string]string `json:"kernel_paths,omitempty"`
	// LlamaCpp holds the GGUF files' speeds in llama.cpp (--gguf).
	LlamaCpp []GGUFSpeed `json:"llamacpp,omitempty"`
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return nil, usagef("--%s: %q is not a positive integer", flag, p)
		}
		out = append(out, v)
	}
	return out, nil
}

// quantizeModel plugs integer-kernel or fake-quantized layers for spec into m.
func quantizeModel(m *model.Model, sp eval.Spec, kernel string, opt quant.SearchOptions) error {
	if kernel == "fake" {
		return eval.Apply(m, sp, opt, nil)
	}
	if sp.Act == quant.ActStatic || (sp.Act == quant.ActDynamic) != (sp.Weight.Bits == 8) {
		return usagef("--kernel int runs w8a8 (dynamic) and 4-bit weight-only schemes, not %s (try --kernel fake)", sp.Name)
	}
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		var bias []float32
		if b := m.Weight(name + ".bias"); b != nil {
			bias = b.F32()
		}
		ql, err := model.NewQuantLinear(name, w.ToF32(), bias, w.Shape[0], w.Shape[1], sp.Weight, opt)
		if err != nil {
			return err
		}
		if err := m.SetLinear(name, ql); err != nil {
			return err
		}
	}
	return nil
}

// benchSweep is what a model benchmark times: the full-precision baseline and each scheme,
// at every batch x sequence length.
type benchSweep struct {
	batches, seqs []int
	search        quant.SearchMethod // the weight scale search of the schemes
	specs         []eval.Spec
}

// sweep checks the run counts and parses the sizes (--batch, --seq), the weight scale
// search and the schemes of a benchmark.
func (f *BenchModelOptions) sweep() (sw benchSweep, err error) {
	if f.Runs < 1 || f.Warmup < 0 {
		return sw, usagef("--runs must be >= 1 and --warmup >= 0")
	}
	if sw.batches, err = parseInts("batch", f.Batches); err != nil {
		return sw, err
	}
	if sw.seqs, err = parseInts("seq", f.Seqs); err != nil {
		return sw, err
	}
	if sw.search, err = quant.ParseSearch(f.Search); err != nil {
		return sw, usagef("--search: %v", err)
	}
	for _, s := range f.Schemes {
		sp, err := eval.ParseSpec(s)
		if err != nil {
			return sw, usagef("--scheme: %v", err)
		}
		sw.specs = append(sw.specs, sp)
	}
	return sw, nil
}

// fits checks every sequence length against the model's maximum (0: no maximum).
func (sw benchSweep) fits(maxSeq int) error {
	for _, s := range sw.seqs {
		if maxSeq > 0 && s > maxSeq {
			return usagef("--seq %d exceeds the model's maximum of %d", s, maxSeq)
		}
	}
	return nil
}

// BenchModel is `autoq bench model`: whole-model prefill latency, full precision vs
// quantized, per batch x sequence length (CPU reference kernels, or the GPU model runner).
func BenchModel(env Env, o BenchModelOptions) (*BenchModelReport, error) {
	f := &o
	if len(f.GGUF) > 0 {
		return benchGGUF(env, f)
	}
	if err := checkOutputs(env, f.Force, []string{f.Model}, outFile("--plot", f.Plot)); err != nil {
		return nil, err
	}
	dev, err := selectRunnerDevice(env, "bench model", f.Device)
	if err != nil {
		return nil, err
	}
	if dev.CUDA {
		return benchModelGPU(env, f, dev)
	}
	if f.Model == "" {
		return nil, usagef("--model is required")
	}
	sw, err := f.sweep()
	if err != nil {
		return nil, err
	}
	if f.Kernel != "int" && f.Kernel != "fake" {
		return nil, usagef("--kernel must be int or fake, got %q", f.Kernel)
	}
	ref, err := model.Load(f.Model)
	if err != nil {
		return nil, err
	}
	labels := []string{"fp32"}
	models := []*model.Model{ref}
	for _, sp := range sw.specs {
		m, err := model.Load(f.Model)
		if err != nil {
			return nil, err
		}
		if err := quantizeModel(m, sp, f.Kernel, quant.SearchOptions{Method: sw.search}); err != nil {
			return nil, err
		}
		labels, models = append(labels, sp.Name), append(models, m)
	}
	if err := sw.fits(ref.Config.MaxSeq); err != nil {
		return nil, err
	}
	rep := &BenchModelReport{Model: f.Model, Device: "cpu", Kernel: f.Kernel, Runs: f.Runs}
	bar := progress.New(env.bars(), "bench model", int64(len(sw.batches)*len(sw.seqs)*len(models)), "runs")
	for _, b := range sw.batches {
		for _, s := range sw.seqs {
			toks := benchTokens(b, s, ref.Config.Vocab)
			pt := BenchPoint{Batch: b, Seq: s}
			for i, m := range models {
				t, err := TimeForward(m, toks, f.Warmup, f.Runs)
				if err != nil {
					return nil, err
				}
				pt.Variants = append(pt.Variants, pt.newVariant(labels[i], t, b*s))
				bar.Add(1)
			}
			rep.Points = append(rep.Points, pt)
		}
	}
	bar.Done()
	if f.Plot != "" {
		if err := plotBenchModel(rep, f.Plot); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// benchTokens returns batch sequences of deterministic token ids (BOS first).
func benchTokens(batch, seq, vocab int) [][]int {
	r := rand.New(rand.NewPCG(uint64(batch), uint64(seq)))
	out := make([][]int, batch)
	for b := range out {
		out[b] = make([]int, seq)
		out[b][0] = 1 % vocab
		for i := 1; i < seq; i++ {
			out[b][i] = r.IntN(vocab)
		}
	}
	return out
}

// WriteTable prints one row per point and scheme (and, on a GPU, the kernel paths).
func (rep *BenchModelReport) WriteTable(w io.Writer) {
	if rep.LlamaCpp != nil {
		rep.writeGGUF(w)
		return
	}
	fmt.Fprintf(w, "%s: prefill latency on the %s (quantized layers: %s kernels), median of %d runs\n", rep.Model, rep.Device, rep.Kernel, rep.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tseq\tscheme\tms\ttok/s\tspeedup\t")
	noise := false
	for _, p := range rep.Points {
		for _, v := range p.Variants {
			mark := ""
			if v.WithinNoise {
				mark, noise = "~", true
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.2f\t%.0f\t%s%.2fx\t\n", p.Batch, p.Seq, v.Scheme, v.MedianMs, v.TokensPerSec, mark, v.Speedup)
		}
	}
	tw.Flush()
	if noise {
		fmt.Fprintln(w, "~: within the run-to-run spread of the baseline (the runs overlap): no speedup is claimed")
	}
	if rep.Baseline != "" {
		fmt.Fprintf(w, "speedup is against %s (cuBLAS); linear-layer paths per variant:\n", rep.Baseline)
		for _, l := range rep.Points[0].Variants {
			fmt.Fprintf(w, "  %s: %s\n", l.Scheme, rep.Paths[l.Scheme])
		}
	}
}

// plotBenchModel draws median latency per point (x: batch x seq) for each variant.
func plotBenchModel(rep *BenchModelReport, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Prefill latency, %s (%s, %s kernels)", filepath.Base(rep.Model), rep.Device, rep.Kernel)
	p.X.Label.Text = "point (batch x seq)"
	p.Y.Label.Text = "median ms"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	var names []string
	for _, pt := range rep.Points {
		names = append(names, fmt.Sprintf("%dx%d", pt.Batch, pt.Seq))
	}
	p.NominalX(names...)
	var lines []any
	for vi, v := range rep.Points[0].Variants {
		xy := make(plotter.XYs, len(rep.Points))
		for i, pt := range rep.Points {
			xy[i] = plotter.XY{X: float64(i), Y: pt.Variants[vi].MedianMs}
		}
		lines = append(lines, v.Scheme, xy)
	}
	return bench.WriteLinePlot(p, path, 8*vg.Inch, 5*vg.Inch, lines...)
}
