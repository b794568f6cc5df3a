package autoquant

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// EvalOptions configures Eval (`autoq eval`).
type EvalOptions struct {
	Model     string   // llama2.c .bin file or Hugging Face directory
	Tokenizer string   // default: beside the model
	Data      string   // text (paragraphs) or .jsonl token ids
	Schemes   []string // fake-quantization schemes compared with full precision
	Quantized string   // also evaluate a quantized checkpoint directory
	Search    string   // weight scale search for Schemes: max, percentile or mse
	Tokens    int      // tokens to evaluate (0: the whole split)
	SeqLen    int
	Batch     int
	Split     string // eval (second half), calib (first half) or all
	Skip      int    // tokens skipped at the start of the split
	// ActCalib calibrates static activation scales (a8s schemes) on CalibTokens tokens of
	// the calib split, unless CalibTable gives them.
	ActCalib    string
	CalibTokens int
	CalibTable  string
	Device      string // cpu, cuda[:N] or auto
	// Rotate rotates the model before the --scheme variants are applied (and calibrated);
	// the full-precision reference stays the original model.
	Rotate Rotation
	// GGUF files evaluated with exactly their stored weights (their llama.cpp
	// dequantization), and, when LlamaCpp allows and llama.cpp is installed, scored by
	// llama.cpp itself on the same windows.
	GGUF     []string
	LlamaCpp string // auto (when installed), on (required) or off
}

// EvalRow is one evaluated variant.
type EvalRow struct {
	Scheme string `json:"scheme"`
	eval.Result
	PPLIncrease float64 `json:"ppl_increase_pct"` // vs full precision
	// A GGUF file's llama.cpp score on the same windows and targets, and its relative
	// difference from autoq's perplexity of the same weights.
	LlamaCppPPL float64 `json:"llamacpp_perplexity,omitempty"`
	LlamaCppRel float64 `json:"llamacpp_ppl_rel_diff,omitempty"`
	// GGUF is the file's storage in llama.cpp's accounting.
	GGUF *GGUFBits `json:"gguf,omitempty"`
}

// EvalReport is the result of Eval.
type EvalReport struct {
	Model     string    `json:"model"`
	Data      string    `json:"data"`
	Split     string    `json:"split"`
	SeqLen    int       `json:"seq_len"`
	Windowing string    `json:"windowing"`
	Search    string    `json:"search"`
	Results   []EvalRow `json:"results"`
	// LlamaCpp says how the GGUF files were scored by llama.cpp ("" when they were not).
	LlamaCpp string `json:"llamacpp,omitempty"`
}

const windowingDoc = "paragraphs stripped of leading/trailing whitespace, tokenized with BOS, concatenated, non-overlapping windows of seq_len tokens from position 0; all next-token targets except BOS scored"

// Eval is `autoq eval`: perplexity of a model and of fake-quantized variants against full
// precision (NLL, KL, top-1), on the CPU reference or the GPU model runner.
func Eval(env Env, o EvalOptions) (*EvalReport, error) {
	f := &o
	if f.Model == "" || f.Data == "" {
		return nil, usagef("--model and --data are required")
	}
	if f.SeqLen < 2 || f.Batch < 1 || f.Tokens < 0 || f.Skip < 0 {
		return nil, usagef("--seq-len must be >= 2, --batch >= 1, --tokens and --skip-tokens >= 0")
	}
	var specs []eval.Spec
	for _, s := range f.Schemes {
		sp, err := eval.ParseSpec(s)
		if err != nil {
			return nil, usagef("--scheme: %v", err)
		}
		specs = append(specs, sp)
	}
	search, err := quant.ParseSearch(f.Search)
	if err != nil {
		return nil, usagef("--search: %v", err)
	}
	calMethod, err := calib.ParseMethod(f.ActCalib)
	if err != nil {
		return nil, usagef("--act-calib: %v", err)
	}
	llama, err := f.checkGGUF(env)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(f.Device, "cuda") {
		if err := checkGPUEval(f, specs); err != nil {
			return nil, err
		}
	}
	f.Device = evalDevice(f, specs)
	if err := f.Rotate.check(); err != nil {
		return nil, err
	}
	if f.Rotate.On() && len(specs) == 0 {
		return nil, usagef("--rotate applies to the --scheme variants (a --quantized directory carries its own rotation)")
	}
	if err := checkData(f.Model, f.Data); err != nil {
		return nil, err
	}
	dev, err := selectRunnerDevice(env, "eval", f.Device)
	if err != nil {
		return nil, err
	}
	if dev.CUDA {
		return evalGPU(env, f, dev, specs, quant.SearchOptions{Method: search})
	}
	m, tok, err := loadModelAndTokenizer(f.Model, f.Tokenizer, f.Data, f.Rotate)
	if err != nil {
		return nil, err
	}
	ref, err := model.Load(f.Model)
	if err != nil {
		return nil, err
	}
	calRef := ref // full precision, as the schemes see it (rotated with --rotate)
	if f.Rotate.On() {
		if calRef, err = f.Rotate.loadModel(f.Model); err != nil {
			return nil, err
		}
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	rep := &EvalReport{Model: f.Model, Data: f.Data, Split: f.Split, SeqLen: f.SeqLen, Windowing: windowingDoc, Search: f.Search}
	// One model instance per variant, all run on each batch next to one reference pass.
	var cands []eval.Forwarder
	var labels []string
	var amax map[string]float32
	var hs map[string]*gptq.Hessian
	var calWS [][]int
	calibWindows := func() ([][]int, error) { // the calib split, read once
		if calWS != nil {
			return calWS, nil
		}
		var err error
		calWS, err = eval.ReadWindows(f.Data, tok, ref.Config.Vocab, eval.DataOptions{SeqLen: f.SeqLen, MaxTokens: f.CalibTokens, Split: "calib"})
		return calWS, err
	}
	for i, sp := range specs {
		cm := m
		if i > 0 {
			if cm, err = f.Rotate.loadModel(f.Model); err != nil {
				return nil, err
			}
		}
		if sp.Act == quant.ActStatic && amax == nil && f.CalibTable != "" {
			if _, amax, err = tableAmax(f.CalibTable, ref.LinearNames()); err != nil {
				return nil, err
			}
		}
		if sp.Act == quant.ActStatic && amax == nil {
			ws, err := calibWindows()
			if err != nil {
				return nil, err
			}
			amax, _, err = calibrun.LayerThresholds(calRef, ws, calib.DefaultOptions(calMethod), f.Batch)
			if err != nil {
				return nil, fmt.Errorf("calibrating static activation scales: %w", err)
			}
		}
		if sp.Rounding == quant.RoundGPTQ {
			// GPTQ needs the layers' input Hessians: collected once, on the calib split, from
			// the full-precision model the schemes see.
			if hs == nil {
				ws, err := calibWindows()
				if err != nil {
					return nil, err
				}
				if hs, err = collect.Hessians(calRef, ws, f.Batch, nil); err != nil {
					return nil, fmt.Errorf("collecting GPTQ Hessians: %w", err)
				}
				env.logf("collected GPTQ Hessians for %d layers on %d calibration windows\n", len(hs), len(ws))
			}
			qz := &Quantizers{LowBit: GPTQ(hs, BestGPTQ), Amax: amax, ScaleDType: tensor.F32}
			for _, name := range cm.LinearNames() {
				l, err := qz.Quantize(cm, name, sp.Recipe)
				if err != nil {
					return nil, err
				}
				if err := cm.SetLinear(name, l.Linear); err != nil {
					return nil, err
				}
			}
		} else if err := eval.Apply(cm, sp, quant.SearchOptions{Method: search}, amax); err != nil {
			return nil, err
		}
		cands, labels = append(cands, cm), append(labels, sp.Name)
	}
	if f.Quantized != "" {
		qm, err := loadQuantizedDir(f.Quantized, ref)
		if err != nil {
			return nil, err
		}
		cands, labels = append(cands, qm), append(labels, filepath.Base(filepath.Clean(f.Quantized)))
	}
	ggufFirst := len(cands)
	var bits []GGUFBits
	for _, path := range f.GGUF {
		gm, b, err := LoadGGUF(path)
		if err != nil {
			return nil, err
		}
		if gm.Config.Vocab != ref.Config.Vocab || gm.Config.Dim != ref.Config.Dim || gm.Config.Layers != ref.Config.Layers {
			return nil, fmt.Errorf("%s is not a version of %s (vocabulary %d, dim %d, %d layers; the model has %d, %d, %d)",
				path, f.Model, gm.Config.Vocab, gm.Config.Dim, gm.Config.Layers, ref.Config.Vocab, ref.Config.Dim, ref.Config.Layers)
		}
		cands, labels, bits = append(cands, gm), append(labels, filepath.Base(path)), append(bits, b)
	}
	var w eval.Source
	ow, err := eval.OpenWindows(f.Data, tok, ref.Config.Vocab, eval.DataOptions{SeqLen: f.SeqLen, MaxTokens: f.Tokens, Split: f.Split, SkipTokens: f.Skip})
	if err != nil {
		return nil, err
	}
	defer ow.Close()
	w = ow
	var scored [][]int // the windows llama.cpp scores too
	if llama != nil {
		if scored, err = eval.ReadAll(ow); err != nil {
			return nil, err
		}
		w = newWindows(scored)
	}
	bar := progress.New(env.bars(), "eval", int64(f.Tokens), "tok")
	fp, rs, err := eval.Compare(ref, cands, w, eval.Options{Ctx: env.Ctx, Vocab: ref.Config.Vocab, BOS: bos, Batch: f.Batch, Progress: func(n int) { bar.Add(int64(n)) }})
	bar.Done()
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, EvalRow{Scheme: "fp32", Result: fp})
	for i, r := range rs {
		rep.Results = append(rep.Results, EvalRow{Scheme: labels[i], Result: r, PPLIncrease: 100 * (r.Perplexity/fp.Perplexity - 1)})
		if i >= ggufFirst {
			rep.Results[len(rep.Results)-1].GGUF = &bits[i-ggufFirst]
		}
	}
	if llama != nil {
		if err := scoreLlamaCpp(env, llama, f.GGUF, rep.Results[1+ggufFirst:], scored, bos); err != nil {
			return nil, err
		}
		rep.LlamaCpp = llamaCppSettings
	}
	return rep, nil
}

// WriteTable prints the report as the CLI's table.
func (rep *EvalReport) WriteTable(w io.Writer) {
	r0 := rep.Results[0]
	fmt.Fprintf(w, "%s on %s (split %s): %d tokens in %d windows of <= %d, %d targets scored\n",
		rep.Model, rep.Data, rep.Split, r0.Tokens, r0.Windows, rep.SeqLen, r0.Scored)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scheme\tperplexity\tvs %s\tNLL\tKL(fp||q)\ttop-1\ttok/s\t\n", r0.Scheme)
	for _, r := range rep.Results {
		vs, kl, top := "", "", ""
		if r.HasRef {
			vs = fmt.Sprintf("%+.2f%%", r.PPLIncrease)
			kl = fmt.Sprintf("%.5f", r.KL)
			top = fmt.Sprintf("%.2f%%", 100*r.Top1)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%s\t%.4f\t%s\t%s\t%.0f\t\n", r.Scheme, r.Perplexity, vs, r.NLL, kl, top, r.TokensPerSec)
	}
	tw.Flush()
	rep.writeGGUF(w)
}
