package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/spf13/pflag"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type benchModelFlags struct {
	model          string
	schemes        []string
	batches, seqs  string
	runs, warmup   int
	kernel, search string
	json           bool
	plot           string
	device         string
}

func init() {
	f := &benchModelFlags{}
	register(&command{
		name:    "bench model",
		summary: "prefill latency of the whole model, full precision (F32 on the CPU) vs quantized, per batch x sequence length",
		usage: "--model PATH [--scheme w8a8,w4g32] [--batch 1,4] [--seq 64,256] [flags]\n\n" +
			"Each point runs a prefill of batch sequences of seq deterministic pseudo-random tokens; the time is\n" +
			"the median of --runs runs after --warmup untimed ones. --kernel int runs quantized layers on the\n" +
			"integer reference kernels (W8A8: int8 x int8 -> int32; W4A16: int4 weights); --kernel fake runs\n" +
			"the fake-quantized float layers.\n\n" +
			"--device cuda[:N] times the GPU model runner instead: F16 (cuBLAS) baseline vs the W8A8 / W4A16\n" +
			"kernels (layers whose shapes the kernels cannot take run as dequantized F16; the paths are reported),\n" +
			"median device time from CUDA events. Without --model it benchmarks a synthetic 2-layer model with\n" +
			"Llama-7B shapes (dim 4096, MLP 11008, 32 heads, vocab 32000) generated on the GPU.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.model, "model", "", "llama2.c .bin file or Hugging Face directory (required)")
			fs.StringSliceVar(&f.schemes, "scheme", []string{"w8a8", "w4g32"}, "quantization schemes (see autoq eval --help)")
			fs.StringVar(&f.batches, "batch", "1,4", "comma-separated batch sizes")
			fs.StringVar(&f.seqs, "seq", "64,256", "comma-separated sequence lengths")
			fs.IntVar(&f.runs, "runs", 5, "timed runs per point (the median is reported)")
			fs.IntVar(&f.warmup, "warmup", 1, "untimed runs per point")
			fs.StringVar(&f.kernel, "kernel", "int", "quantized layers: int (integer reference kernels) or fake (fake-quantized float)")
			fs.StringVar(&f.search, "search", "max", "weight scale search: max, percentile or mse")
			fs.BoolVar(&f.json, "json", false, "print the results as JSON")
			fs.StringVar(&f.plot, "plot", "", "also draw latency per point into a PNG `FILE`")
			fs.StringVar(&f.device, "device", "cpu", "cpu, cuda / cuda:N, or auto (cuda when present): F16 (cuBLAS) vs the W8A8/W4A16 kernels timed with CUDA events; without --model a synthetic 2-layer Llama-7B-shaped model generated on the GPU")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("bench model takes no arguments, got %q", args)
			}
			return runBenchModel(e, f)
		},
	})
}

type benchVariant struct {
	Scheme       string  `json:"scheme"`
	MedianMs     float64 `json:"median_ms"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	Speedup      float64 `json:"speedup_vs_fp32"`
}

type benchPoint struct {
	Batch    int            `json:"batch"`
	Seq      int            `json:"seq"`
	Variants []benchVariant `json:"variants"` // fp32 first
}

type benchModelReport struct {
	Model  string       `json:"model"`
	Device string       `json:"device"`
	Kernel string       `json:"kernel"`
	Runs   int          `json:"runs"`
	Points []benchPoint `json:"points"`
	// GPU runs: the baseline the speedups refer to (fp16) and each variant's kernel paths.
	Baseline string            `json:"baseline,omitempty"`
	Paths    map[string]string `json:"kernel_paths,omitempty"`
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
	if sp.Act == model.ActStatic || (sp.Act == model.ActPerToken) != (sp.Weight.Bits == 8) {
		return usagef("--kernel int runs w8a8 (dynamic) and 4-bit weight-only schemes, not %s (try --kernel fake)", sp.Name)
	}
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		var bias []float32
		if b := m.Weight(name + ".bias"); b != nil {
			bias = b.F32()
		}
		ql, err := model.NewQuantLinear(name, w.F32(), bias, w.Shape[0], w.Shape[1], sp.Weight, opt)
		if err != nil {
			return err
		}
		if err := m.SetLinear(name, ql); err != nil {
			return err
		}
	}
	return nil
}

func runBenchModel(e *env, f *benchModelFlags) error {
	if f.device = resolveDevice(e, "bench model", f.device); f.device != "cpu" {
		return runBenchModelGPU(e, f)
	}
	if f.model == "" {
		return usagef("--model is required")
	}
	if f.runs < 1 || f.warmup < 0 {
		return usagef("--runs must be >= 1 and --warmup >= 0")
	}
	if f.kernel != "int" && f.kernel != "fake" {
		return usagef("--kernel must be int or fake, got %q", f.kernel)
	}
	batches, err := parseInts("batch", f.batches)
	if err != nil {
		return err
	}
	seqs, err := parseInts("seq", f.seqs)
	if err != nil {
		return err
	}
	search, err := quant.ParseSearch(f.search)
	if err != nil {
		return usagef("--search: %v", err)
	}
	ref, err := model.Load(f.model)
	if err != nil {
		return err
	}
	labels := []string{"fp32"}
	models := []*model.Model{ref}
	for _, s := range f.schemes {
		sp, err := eval.ParseSpec(s)
		if err != nil {
			return usagef("--scheme: %v", err)
		}
		m, err := model.Load(f.model)
		if err != nil {
			return err
		}
		if err := quantizeModel(m, sp, f.kernel, quant.SearchOptions{Method: search}); err != nil {
			return err
		}
		labels, models = append(labels, sp.Name), append(models, m)
	}
	for _, s := range seqs {
		if ref.Config.MaxSeq > 0 && s > ref.Config.MaxSeq {
			return usagef("--seq %d exceeds the model's maximum of %d", s, ref.Config.MaxSeq)
		}
	}
	rep := benchModelReport{Model: f.model, Device: "cpu", Kernel: f.kernel, Runs: f.runs}
	bar := progress.New(e.stderr, "bench model", int64(len(batches)*len(seqs)*len(models)), "runs")
	for _, b := range batches {
		for _, s := range seqs {
			toks := benchTokens(b, s, ref.Config.Vocab)
			pt := benchPoint{Batch: b, Seq: s}
			for i, m := range models {
				ms, err := medianForwardMs(m, toks, f.warmup, f.runs)
				if err != nil {
					return err
				}
				v := benchVariant{Scheme: labels[i], MedianMs: ms, TokensPerSec: float64(b*s) / (ms / 1000)}
				v.Speedup = pt.fp32Ms(ms) / ms
				pt.Variants = append(pt.Variants, v)
				bar.Add(1)
			}
			rep.Points = append(rep.Points, pt)
		}
	}
	bar.Done()
	if f.plot != "" {
		if err := plotBenchModel(rep, f.plot); err != nil {
			return err
		}
	}
	if f.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBenchModel(e.stdout, rep)
	return nil
}

// fp32Ms is the point's full-precision time (ms itself while fp32 is being measured).
func (p *benchPoint) fp32Ms(ms float64) float64 {
	if len(p.Variants) == 0 {
		return ms
	}
	return p.Variants[0].MedianMs
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

func medianForwardMs(m *model.Model, toks [][]int, warmup, runs int) (float64, error) {
	for i := 0; i < warmup; i++ {
		if _, err := m.Forward(toks, nil); err != nil {
			return 0, err
		}
	}
	ts := make([]float64, runs)
	for i := range ts {
		t0 := time.Now()
		if _, err := m.Forward(toks, nil); err != nil {
			return 0, err
		}
		ts[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	sort.Float64s(ts)
	if runs%2 == 1 {
		return ts[runs/2], nil
	}
	return (ts[runs/2-1] + ts[runs/2]) / 2, nil
}

func printBenchModel(w io.Writer, rep benchModelReport) {
	fmt.Fprintf(w, "%s: prefill latency on the %s (quantized layers: %s kernels), median of %d runs\n", rep.Model, rep.Device, rep.Kernel, rep.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tseq\tscheme\tms\ttok/s\tspeedup\t")
	for _, p := range rep.Points {
		for _, v := range p.Variants {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.2f\t%.0f\t%.2fx\t\n", p.Batch, p.Seq, v.Scheme, v.MedianMs, v.TokensPerSec, v.Speedup)
		}
	}
	tw.Flush()
}

// plotBenchModel draws median latency per point (x: batch x seq) for each variant.
func plotBenchModel(rep benchModelReport, path string) error {
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
	var args []any
	for vi, v := range rep.Points[0].Variants {
		xy := make(plotter.XYs, len(rep.Points))
		for i, pt := range rep.Points {
			xy[i] = plotter.XY{X: float64(i), Y: pt.Variants[vi].MedianMs}
		}
		args = append(args, v.Scheme, xy)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := wt.WriteTo(f)
		return err
	})
}
