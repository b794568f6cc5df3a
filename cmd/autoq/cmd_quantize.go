package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/spf13/pflag"
)

// quantizeFlags are the options of `autoq quantize`.
type quantizeFlags struct {
	bits       int
	gran       string
	groupSize  int
	sym, asym  bool
	search     string
	percentile float64
	include    []string
	exclude    []string
	device     string
	out        string
	json       bool
	// Calibrated quantization (cmd_quantize_calibrated.go): GPTQ and the act-mse search
	// run the model on calibration text.
	method      string
	data        string
	tokenizer   string
	calibTokens int
	seqLen      int
	actOrder    bool
	damp        float64
}

func init() {
	q := &quantizeFlags{}
	register(&command{
		name:    "quantize",
		summary: "weight-only quantization of a checkpoint's 2-D weights, with a per-tensor error report",
		usage: "[PATH] [flags]\n\nPATH is a .safetensors file, a Hugging Face checkpoint directory (single or sharded), or a llama2.c\n" +
			".bin file. Without PATH, a built-in deterministic synthetic Llama checkpoint (with outlier channels)\n" +
			"is quantized. Every 2-D weight except embeddings and lm_head is quantized unless --include says\n" +
			"otherwise; norms and other tensors are copied. Output layout: docs/FORMAT.md.",
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&q.bits, "bits", 8, "bits per weight: 8 or 4")
			fs.StringVar(&q.gran, "granularity", "channel", "scale granularity: channel (per output row), group, or tensor")
			fs.IntVar(&q.groupSize, "group-size", 128, "inputs per scale group (--granularity group)")
			fs.BoolVar(&q.sym, "sym", false, "symmetric quantization, no zero point (the default)")
			fs.BoolVar(&q.asym, "asym", false, "asymmetric quantization with a zero point")
			fs.StringVar(&q.search, "search", "max", "scale search: max, percentile, mse, or act-mse (activation-aware: minimises the layer's output error on --data)")
			fs.Float64Var(&q.percentile, "percentile", quant.DefaultPercentile, "percentile for --search percentile")
			fs.StringArrayVar(&q.include, "include", nil, "quantize only 2-D weights whose name matches this glob (repeatable; replaces the default selection)")
			fs.StringArrayVar(&q.exclude, "exclude", nil, "keep weights matching this glob in full precision (repeatable)")
			fs.StringVar(&q.method, "method", "rtn", "how values are rounded: rtn (round to nearest) or gptq (error compensation with the layer's input Hessian, needs --data)")
			fs.StringVar(&q.data, "data", "", "calibration text (or .jsonl token ids) for --method gptq and --search act-mse; its first half is used")
			fs.StringVar(&q.tokenizer, "tokenizer", "", "tokenizer for --data (tok*.bin or tokenizer.json); default: beside the model")
			fs.IntVar(&q.calibTokens, "calib-tokens", 32768, "calibration tokens for --method gptq / --search act-mse")
			fs.IntVar(&q.seqLen, "seq-len", 256, "calibration window length in tokens")
			fs.BoolVar(&q.actOrder, "act-order", true, "GPTQ: visit columns by decreasing Hessian diagonal (the output keeps the original order)")
			fs.Float64Var(&q.damp, "damp", 0.01, "GPTQ: damping, as a fraction of the mean Hessian diagonal")
			fs.StringVar(&q.device, "device", "auto", "auto, cpu, cuda or cuda:N")
			fs.StringVar(&q.out, "out", "", "output checkpoint directory (replaced atomically); omit for the report only")
			fs.BoolVar(&q.json, "json", false, "print the report as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error { return runQuantize(e, fs, q, args) },
	})
}

// scheme turns the flags into a quant.Scheme and search options, or a usage error.
func (q *quantizeFlags) scheme(fs *pflag.FlagSet) (quant.Scheme, quant.SearchOptions, error) {
	var s quant.Scheme
	var opt quant.SearchOptions
	if q.sym && q.asym {
		return s, opt, usagef("--sym and --asym exclude each other")
	}
	g, err := quant.ParseGranularity(q.gran)
	if err != nil {
		return s, opt, usagef("--granularity: %v", err)
	}
	s = quant.Scheme{Bits: q.bits, Symmetric: !q.asym, Granularity: g}
	if g == quant.PerGroup {
		s.GroupSize = q.groupSize
	} else if fs.Changed("group-size") {
		return s, opt, usagef("--group-size needs --granularity group")
	}
	if err := s.Validate(); err != nil {
		return s, opt, usagef("%v", err)
	}
	searchName := q.search
	if searchName == "act-mse" {
		searchName = "max" // act-mse runs in the calibrated path (cmd_quantize_calibrated.go)
	}
	m, err := quant.ParseSearch(searchName)
	if err != nil {
		return s, opt, usagef("--search: %v", err)
	}
	opt.Method = m
	if m == quant.SearchPercentile {
		opt.Percentile = q.percentile
		if !(q.percentile > 0 && q.percentile <= 100) {
			return s, opt, usagef("--percentile must be in (0, 100], got %v", q.percentile)
		}
	} else if fs.Changed("percentile") {
		return s, opt, usagef("--percentile needs --search percentile")
	}
	if err := checkpoint.CheckPatterns(append(append([]string(nil), q.include...), q.exclude...)...); err != nil {
		return s, opt, usagef("%v", err)
	}
	return s, opt, nil
}

// openSource opens PATH, or the synthetic checkpoint when there is none.
func openSource(args []string) (*checkpoint.Opened, string, error) {
	switch len(args) {
	case 0:
		cfg, ts := syntheticCheckpoint()
		m, err := checkpoint.NewMemory(ts, nil)
		if err != nil {
			return nil, "", err
		}
		return &checkpoint.Opened{Tensors: m, Config: cfg}, "synthetic", nil
	case 1:
		o, err := checkpoint.OpenAny(args[0])
		return o, args[0], err
	}
	return nil, "", usagef("expected at most one PATH, got %d arguments", len(args))
}

func runQuantize(e *env, fs *pflag.FlagSet, q *quantizeFlags, args []string) error {
	s, opt, err := q.scheme(fs)
	if err != nil {
		return err
	}
	cal, err := q.calibration()
	if err != nil {
		return err
	}
	if cal != nil && len(args) != 1 {
		return usagef("--method gptq and --search act-mse need a model PATH (the model runs on --data)")
	}
	eng, err := openQuantEngine(e, q.device)
	if err != nil {
		return err
	}
	defer eng.b.Close()
	var pre map[string]*quant.QTensor
	if cal != nil {
		if pre, err = quantizeCalibrated(e, q, cal, s, eng, args); err != nil {
			return err
		}
	}
	src, srcName, err := openSource(args)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.ConfigErr != nil {
		// The config travels with the output: refuse to copy one that is not even JSON. A
		// valid config of an architecture autoq cannot run is fine for weight-only work.
		if b, err := os.ReadFile(filepath.Join(src.Dir, "config.json")); err != nil || !json.Valid(b) {
			return fmt.Errorf("%s: %w", srcName, src.ConfigErr)
		}
		fmt.Fprintf(e.stderr, "note: %v (copied as is: weight-only quantization does not need it)\n", src.ConfigErr)
	}
	sel, err := checkpoint.SelectWeights(src, q.include, q.exclude)
	var unmatched *checkpoint.UnmatchedPatternError
	if errors.As(err, &unmatched) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	plan, err := planQuantized(src, sel, s, opt, pre)
	if err != nil {
		return err
	}
	if cal != nil {
		plan.meta["autoq.search"] = cal.name
	}
	rep := &quantizeReport{Source: srcName, Device: eng.name, Fallback: eng.fallback, Scheme: s.String(),
		Bits: s.Bits, Symmetric: s.Symmetric, Granularity: s.Granularity.String(), GroupSize: s.GroupSize,
		Search: opt.Method.String(), Out: q.out}
	if cal != nil {
		rep.Search = cal.name
	}
	if opt.Method == quant.SearchPercentile {
		rep.Percentile = opt.Percentile
	}
	if len(plan.notLinear) > 0 {
		fmt.Fprintf(e.stderr, "warning: %d selected weight(s) kept in full precision: not a linear layer of the model: %s\n",
			len(plan.notLinear), strings.Join(plan.notLinear, ", "))
	}
	rep.Refitted = plan.refitted
	if len(plan.refitted) > 0 {
		fmt.Fprintf(e.stderr, "note: %d weight(s) whose input width group size %d does not divide use the next divisor: %s\n",
			len(plan.refitted), s.GroupSize, strings.Join(plan.refitted, ", "))
	}
	if err := plan.run(e, src, eng, rep, q.out); err != nil {
		return err
	}
	if q.json {
		return writeReportJSON(e.stdout, rep)
	}
	rep.printTable(e.stdout)
	return nil
}

// planQuantized lays out the output file: every input tensor in order, a selected weight
// replaced by its .qweight/.scales/.zeros, with the per-tensor metadata. Shapes that the
// scheme cannot take (columns not dividing by the group size) fail here, before any work.
//
// pre, when not nil, holds weights already quantized by the calibrated path (by tensor
// name, each with its own scheme); a selected weight missing from it is kept.
func planQuantized(src checkpoint.Tensors, sel map[string]bool, s quant.Scheme, opt quant.SearchOptions, pre map[string]*quant.QTensor) (*quantPlan, error) {
	p := &quantPlan{scheme: s, opt: opt, selected: sel, pre: pre, schemes: map[string]quant.Scheme{}, meta: map[string]string{
		"format": "pt", checkpoint.FormatKey: checkpoint.FormatVersion,
		"autoq.scheme": s.String(), "autoq.search": opt.Method.String(),
	}}
	for _, n := range src.Names() {
		info, _ := src.Info(n)
		p.order = append(p.order, n)
		if !sel[n] {
			p.infos = append(p.infos, safetensors.TensorInfo{Name: n, DType: info.DType, Shape: info.Shape})
			continue
		}
		ts := s
		if pre != nil {
			q := pre[n]
			if q == nil {
				delete(sel, n)
				p.notLinear = append(p.notLinear, n)
				p.infos = append(p.infos, safetensors.TensorInfo{Name: n, DType: info.DType, Shape: info.Shape})
				continue
			}
			ts = q.Scheme
		}
		if pre == nil {
			// Real models have widths such as 172 (stories260K's MLP) that no power-of-two
			// group divides: quant.FitCols takes the next divisor (172/g32 -> g43), the rule
			// every autoq command shares. The report lists the refitted weights.
			if f := s.FitCols(info.Shape[1]); f != s {
				ts = f
				p.refitted = append(p.refitted, fmt.Sprintf("%s (%s)", n, f))
			}
			p.schemes[n] = ts
		}
		qi, err := checkpoint.QuantizedInfos(n, info.Shape[0], info.Shape[1], ts)
		if err != nil {
			return nil, err
		}
		p.infos = append(p.infos, qi...)
		m := checkpoint.NewQuantMeta(info.Shape[0], info.Shape[1], ts)
		m.Search, m.DType = opt.Method.String(), info.DType.String()
		p.meta[checkpoint.QuantMetaKey+n] = m.Encode()
		p.total += int64(info.Shape[0] * info.Shape[1])
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no weight to quantize: every selected weight is kept (%s)", strings.Join(p.notLinear, ", "))
	}
	return p, nil
}

// quantPlan is the work of one quantize run, laid out before it starts.
type quantPlan struct {
	scheme   quant.Scheme
	opt      quant.SearchOptions
	selected map[string]bool
	order    []string                 // input tensors in order
	infos    []safetensors.TensorInfo // output tensors in order
	meta     map[string]string
	total    int64 // weights to quantize
	// schemes is each weight's scheme (the requested one fitted to its width); refitted
	// lists the weights whose group size had to change ("name (w4g43)").
	schemes  map[string]quant.Scheme
	refitted []string
	// pre holds weights quantized ahead (calibrated path); notLinear lists selected weights
	// that are no linear layer of the model and so were kept.
	pre       map[string]*quant.QTensor
	notLinear []string
}

// quantEngine is the backend a run uses and how it was chosen.
type quantEngine struct {
	b        backend.Backend
	name     string
	fallback string
}

// openQuantEngine opens --device and says on stderr which device runs the work (and why the
// CPU when CUDA was not available).
func openQuantEngine(e *env, spec string) (*quantEngine, error) {
	b, fallback, err := backend.Open(spec)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown device") || strings.HasPrefix(err.Error(), "bad device") {
			return nil, usagef("--device: %v", err)
		}
		return nil, err
	}
	info := b.Info()
	name := info.Kind
	if info.Kind == "cuda" {
		name = fmt.Sprintf("cuda:%d (%s)", info.Index, info.Name)
	}
	if fallback != "" {
		fmt.Fprintf(e.stderr, "device: %s (%s)\n", name, fallback)
	} else {
		fmt.Fprintf(e.stderr, "device: %s\n", name)
	}
	return &quantEngine{b: b, name: name, fallback: fallback}, nil
}

// run quantizes the selected weights one at a time (memory: one weight and its copies),
// fills rep, and when out is set writes the checkpoint directory atomically.
func (p *quantPlan) run(e *env, src *checkpoint.Opened, eng *quantEngine, rep *quantizeReport, out string) error {
	bar := progress.New(e.stderr, "quantize", p.total, "weights")
	start := time.Now()
	work := func(w *safetensors.Writer) error {
		for _, n := range p.order {
			t, err := src.Tensor(n)
			if err != nil {
				return err
			}
			rep.BytesIn += int64(len(t.Data))
			if !p.selected[n] {
				rep.Kept = append(rep.Kept, n)
				rep.BytesOut += int64(len(t.Data))
				if w != nil {
					if err := w.WriteTensor(n, t.Data); err != nil {
						return err
					}
				}
				continue
			}
			ts, row, err := p.quantizeOne(eng.b, n, t)
			if err != nil {
				return err
			}
			rep.add(row)
			for _, qt := range ts {
				rep.BytesOut += int64(len(qt.T.Data))
				if w != nil {
					if err := w.WriteTensor(qt.Name, qt.T.Data); err != nil {
						return err
					}
				}
			}
			bar.Add(int64(t.NumElements()))
		}
		return nil
	}
	var err error
	if out == "" {
		err = work(nil)
	} else {
		err = atomicfile.Dir(out, func(tmp string) error {
			w, err := safetensors.Create(filepath.Join(tmp, safetensors.SingleFileName), p.infos, p.meta)
			if err != nil {
				return err
			}
			if err := work(w); err != nil {
				w.Abort()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			return copySideFiles(src, tmp)
		})
	}
	bar.Done()
	rep.finish(time.Since(start))
	return err
}

// quantizeOne searches scales, quantizes and dequantizes one weight on the backend, and
// measures the reconstruction error against the original values.
func (p *quantPlan) quantizeOne(b backend.Backend, name string, t *tensor.Tensor) ([]safetensors.NamedTensor, tensorRow, error) {
	q, err := p.quantizeWeight(b, name, t)
	if err != nil {
		return nil, tensorRow{}, err
	}
	dq, err := b.Dequantize(q)
	if err != nil {
		return nil, tensorRow{}, err
	}
	ref := t.ToF32()
	st, err := quant.CompareChecked(ref, dq.F32())
	if err != nil {
		return nil, tensorRow{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	ts, err := checkpoint.QuantizedTensors(q)
	if err != nil {
		return nil, tensorRow{}, err
	}
	var stored int64
	for _, qt := range ts {
		stored += int64(len(qt.T.Data))
	}
	var sig float64
	for _, v := range ref {
		sig += float64(v) * float64(v)
	}
	row := tensorRow{Name: name, Shape: t.Shape, Scheme: q.Scheme.String(), MSE: jf(st.MSE), SQNRdB: jf(st.SQNRdB),
		Cosine: jf(st.Cosine), MaxAbs: jf(st.MaxAbs), BitsPerWeight: float64(8*stored) / float64(len(ref)),
		elements: int64(len(ref)), signal: sig, noise: st.MSE * float64(len(ref)), stored: stored}
	return ts, row, nil
}

// quantizeWeight returns the weight quantized ahead (calibrated path), or searches scales
// and quantizes it on the backend.
func (p *quantPlan) quantizeWeight(b backend.Backend, name string, t *tensor.Tensor) (*quant.QTensor, error) {
	if p.pre != nil {
		return p.pre[name], nil
	}
	s := p.schemes[name]
	scales, zeros, err := b.SearchParams(name, t, s, p.opt)
	if err != nil {
		return nil, err
	}
	return b.Quantize(name, t, s, scales, zeros)
}

// copySideFiles copies config.json and tokenizer files beside the source weights into dir;
// for the synthetic or llama2.c sources, it writes the config.json of their config.
func copySideFiles(src *checkpoint.Opened, dir string) error {
	if src.Dir != "" {
		return checkpoint.CopySideFiles(src.Dir, dir)
	}
	if src.Config == nil {
		return nil
	}
	cj, err := checkpoint.ConfigJSON(src.Config)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644)
}
