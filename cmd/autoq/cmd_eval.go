package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tokenizer"
	"github.com/spf13/pflag"
)

type evalFlags struct {
	model, tokenizer, data, quantized string
	schemes                           []string
	search                            string
	tokens, seqLen, batch, skip       int
	split                             string
	actCalib                          string
	calibTokens                       int
	calibTable                        string
	json                              bool
	device                            string
}

func init() {
	f := &evalFlags{}
	register(&command{
		name:    "eval",
		summary: "perplexity of a model, and of fake-quantized variants against full precision (NLL, KL, top-1)",
		usage: "--model PATH --data FILE [--scheme w8,w8a8,w4g32a,...] [--quantized DIR] [flags]\n\n" +
			"Windowing: paragraphs (blank-line separated) are documents tokenized with BOS first; they are\n" +
			"concatenated and cut into non-overlapping windows of --seq-len tokens, each run from position 0;\n" +
			"every next-token target except BOS is scored. --split eval (the default) uses the documents that\n" +
			"start in the second half of the file, calib the first half. .jsonl data holds token ids per line.\n" +
			"Schemes: w8 (int8 per channel), w8t (per tensor), w4g32 (int4 groups of 32), trailing a =\n" +
			"asymmetric (w4g32a), a8 = int8 activations per token (w8a8), a8s = static per-tensor activation\n" +
			"scales calibrated with --act-calib on the calib split (w8a8s).",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.model, "model", "", "llama2.c .bin file or Hugging Face directory (required)")
			fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer (tok*.bin or tokenizer.json); default: beside the model")
			fs.StringVar(&f.data, "data", "", "text file (paragraphs) or .jsonl of token ids (required)")
			fs.StringSliceVar(&f.schemes, "scheme", nil, "fake-quantization schemes to compare with full precision (comma separated)")
			fs.StringVar(&f.quantized, "quantized", "", "also evaluate a quantized checkpoint directory (autoq quantize --out, or a compressed-tensors export)")
			fs.StringVar(&f.search, "search", "max", "weight scale search for --scheme: max, percentile or mse")
			fs.IntVar(&f.tokens, "tokens", 0, "tokens to evaluate (0: the whole split)")
			fs.IntVar(&f.seqLen, "seq-len", 256, "window length in tokens")
			fs.IntVar(&f.batch, "batch", 4, "windows per forward pass")
			fs.StringVar(&f.split, "split", "eval", "part of the data file: eval (second half), calib (first half) or all")
			fs.IntVar(&f.skip, "skip-tokens", 0, "tokens to skip at the start of the split")
			fs.StringVar(&f.actCalib, "act-calib", "entropy", "calibrator for static activation scales (a8s schemes): entropy, percentile, mse or max")
			fs.IntVar(&f.calibTokens, "calib-tokens", 32768, "tokens of the calib split used to calibrate static activation scales")
			fs.StringVar(&f.calibTable, "calib", "", "calibration table (autoq calibrate --out) giving static activation amax per linear layer, instead of --act-calib")
			fs.BoolVar(&f.json, "json", false, "print the results as JSON")
			fs.StringVar(&f.device, "device", "cpu", "cpu, cuda / cuda:N, or auto (cuda when present): run the reference in F16 and the schemes on the GPU kernels (per-token w8a8 and weight-only schemes)")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error { return runEval(e, f, args) },
	})
}

// evalRow is one evaluated variant.
type evalRow struct {
	Scheme string `json:"scheme"`
	eval.Result
	PPLIncrease float64 `json:"ppl_increase_pct"` // vs full precision
}

type evalReport struct {
	Model     string    `json:"model"`
	Data      string    `json:"data"`
	Split     string    `json:"split"`
	SeqLen    int       `json:"seq_len"`
	Windowing string    `json:"windowing"`
	Search    string    `json:"search"`
	Results   []evalRow `json:"results"`
}

const windowingDoc = "paragraphs tokenized with BOS, concatenated, non-overlapping windows of seq_len tokens from position 0; all next-token targets except BOS scored"

// modelSetup is what eval and bench need: the model, its tokenizer (nil for .jsonl data).
func loadModelAndTokenizer(modelPath, tokPath, data string) (*model.Model, tokenizer.Tokenizer, error) {
	m, err := model.Load(modelPath)
	if err != nil {
		return nil, nil, err
	}
	if strings.EqualFold(filepath.Ext(data), ".jsonl") && tokPath == "" {
		return m, nil, nil
	}
	if tokPath == "" {
		if tokPath = defaultTokenizer(modelPath, m.Config.Vocab); tokPath == "" {
			return nil, nil, usagef("no tokenizer found beside %s: give --tokenizer (tok*.bin or tokenizer.json)", modelPath)
		}
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, nil, err
	}
	if err := tokenizer.CheckVocab(tok, m.Config.Vocab); err != nil {
		return nil, nil, fmt.Errorf("%s and %s: %w", tokPath, modelPath, err)
	}
	return m, tok, nil
}

// defaultTokenizer looks for tokenizer.json in a model directory, or tokenizer.bin /
// tok<vocab>.bin beside a llama2.c file.
func defaultTokenizer(modelPath string, vocab int) string {
	var cands []string
	if st, err := os.Stat(modelPath); err == nil && st.IsDir() {
		cands = []string{filepath.Join(modelPath, "tokenizer.json")}
	} else {
		dir := filepath.Dir(modelPath)
		cands = []string{filepath.Join(dir, "tokenizer.bin"), filepath.Join(dir, fmt.Sprintf("tok%d.bin", vocab))}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

func runEval(e *env, f *evalFlags, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	if f.model == "" || f.data == "" {
		return usagef("--model and --data are required")
	}
	if f.seqLen < 2 || f.batch < 1 || f.tokens < 0 || f.skip < 0 {
		return usagef("--seq-len must be >= 2, --batch >= 1, --tokens and --skip-tokens >= 0")
	}
	var specs []eval.Spec
	for _, s := range f.schemes {
		sp, err := eval.ParseSpec(s)
		if err != nil {
			return usagef("--scheme: %v", err)
		}
		specs = append(specs, sp)
	}
	search, err := quant.ParseSearch(f.search)
	if err != nil {
		return usagef("--search: %v", err)
	}
	calMethod, err := calib.ParseMethod(f.actCalib)
	if err != nil {
		return usagef("--act-calib: %v", err)
	}
	if f.device = resolveDevice(e, "eval", f.device); f.device != "cpu" {
		return runEvalGPU(e, f, specs, quant.SearchOptions{Method: search})
	}
	m, tok, err := loadModelAndTokenizer(f.model, f.tokenizer, f.data)
	if err != nil {
		return err
	}
	ref, err := model.Load(f.model)
	if err != nil {
		return err
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	rep := evalReport{Model: f.model, Data: f.data, Split: f.split, SeqLen: f.seqLen, Windowing: windowingDoc, Search: f.search}
	// One model instance per variant, all run on each batch next to one reference pass.
	var cands []eval.Forwarder
	var labels []string
	var amax map[string]float32
	for i, sp := range specs {
		cm := m
		if i > 0 {
			if cm, err = model.Load(f.model); err != nil {
				return err
			}
		}
		if sp.Act == model.ActStatic && amax == nil && f.calibTable != "" {
			if amax, err = amaxFromTable(f.calibTable, ref.LinearNames()); err != nil {
				return err
			}
		}
		if sp.Act == model.ActStatic && amax == nil {
			cw, err := eval.OpenWindows(f.data, tok, ref.Config.Vocab, eval.DataOptions{SeqLen: f.seqLen, MaxTokens: f.calibTokens, Split: "calib"})
			if err != nil {
				return err
			}
			amax, _, err = eval.CalibrateActivations(ref, cw, calib.DefaultOptions(calMethod), f.batch)
			cw.Close()
			if err != nil {
				return fmt.Errorf("calibrating static activation scales: %w", err)
			}
		}
		if err := eval.Apply(cm, sp, quant.SearchOptions{Method: search}, amax); err != nil {
			return err
		}
		cands, labels = append(cands, cm), append(labels, sp.Name)
	}
	if f.quantized != "" {
		qm := m
		if len(specs) > 0 {
			if qm, err = model.Load(f.model); err != nil {
				return err
			}
		}
		if _, err := applyQuantizedDir(qm, f.quantized); err != nil {
			return err
		}
		cands, labels = append(cands, qm), append(labels, filepath.Base(filepath.Clean(f.quantized)))
	}
	w, err := eval.OpenWindows(f.data, tok, ref.Config.Vocab, eval.DataOptions{SeqLen: f.seqLen, MaxTokens: f.tokens, Split: f.split, SkipTokens: f.skip})
	if err != nil {
		return err
	}
	defer w.Close()
	bar := progress.New(e.stderr, "eval", int64(f.tokens), "tok")
	fp, rs, err := eval.Compare(ref, cands, w, eval.Options{Vocab: ref.Config.Vocab, BOS: bos, Batch: f.batch, Progress: func(n int) { bar.Add(int64(n)) }})
	bar.Done()
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, evalRow{Scheme: "fp32", Result: fp})
	for i, r := range rs {
		rep.Results = append(rep.Results, evalRow{Scheme: labels[i], Result: r, PPLIncrease: 100 * (r.Perplexity/fp.Perplexity - 1)})
	}
	if f.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEvalTable(e.stdout, rep)
	return nil
}

func printEvalTable(w io.Writer, rep evalReport) {
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
}

// amaxFromTable reads each linear layer's activation threshold from a calibration table;
// an entry is found under the layer name or the layer name + ".input".
func amaxFromTable(path string, names []string) (map[string]float32, error) {
	tab, err := calib.ReadTable(path)
	if err != nil {
		return nil, err
	}
	byName := map[string]calib.TableEntry{}
	for _, t := range tab.Tensors {
		byName[t.Name] = t
	}
	amax := map[string]float32{}
	for _, n := range names {
		t, ok := byName[n]
		if !ok {
			t, ok = byName[n+".input"]
		}
		if !ok {
			return nil, fmt.Errorf("calibration table %s has no entry for %s (or %s.input)", path, n, n)
		}
		if t.Empty || !(t.Amax > 0) {
			return nil, fmt.Errorf("calibration table %s: %s has no usable amax (empty tensor)", path, t.Name)
		}
		amax[n] = t.Amax
	}
	return amax, nil
}
