package autoquant

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/backend"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Input is the model and data of the jobs that calibrate, measure and quantize a whole
// model (sensitivity, export, run).
type Input struct {
	Model     string // llama2.c .bin file or Hugging Face directory; "" = built-in synthetic (run)
	Tokenizer string // default: beside the model
	// Data is text (blank-line separated documents: the first half calibrates, the second
	// evaluates) or .jsonl token ids.
	Data        string
	SeqLen      int
	CalibTokens int // calibration tokens (activation thresholds, GPTQ Hessians)
	SensTokens  int // sensitivity tokens (calibration split, after the calibration tokens)
	EvalTokens  int // evaluation tokens for the accuracy gate (0: the whole split)
	CalibMethod string
	Int4        string // gptq or rtn: the method for weights below 8 bits (lowBit)
	Batch       int
	CalibTable  string // static activation thresholds from `autoq calibrate` instead of calibrating
	Device      string // auto, cpu, cuda or cuda:N
}

// openDevice resolves Device, says on the log where the job computes, and returns the
// device. The model stages of sensitivity, export and verify, and run's in-memory pipeline,
// compute on the CPU reference for now; on a GPU the line says so rather than pretending
// otherwise. Run's streaming pipeline computes its forward passes on the device (runNote).
func openDevice(env Env, job, spec string) (backend.Device, error) {
	e, err := openEngine(env, spec)
	if err != nil {
		return backend.Device{}, err
	}
	defer e.b.Close()
	info := e.b.Info()
	if info.Kind != "cuda" {
		return backend.Device{}, nil
	}
	if job != "run" {
		env.logf("note: autoq %s runs its forward passes and quantization on the CPU reference in this version (eval, calibrate, quantize, bench model and run's streaming pipeline use the GPU)\n", job)
	}
	return backend.Device{CUDA: true, Index: info.Index}, nil
}

// dataNeed says which splits a job reads.
type dataNeed struct{ sens, eval bool }

func (f *Input) dataOptions() DataOptions {
	return DataOptions{SeqLen: f.SeqLen, CalibTokens: f.CalibTokens, SensTokens: f.SensTokens, EvalTokens: f.EvalTokens}
}

// check validates the options that need no file.
func (f *Input) check() error {
	if f.SeqLen < 2 || f.CalibTokens < 0 || f.SensTokens < 0 || f.EvalTokens < 0 || f.Batch < 1 {
		return usagef("--seq-len must be >= 2, token counts >= 0, --batch >= 1")
	}
	if f.Int4 != "gptq" && f.Int4 != "rtn" {
		return usagef("--rounding must be gptq or rtn, not %q", f.Int4)
	}
	if _, err := calib.ParseMethod(f.CalibMethod); err != nil {
		return usagef("--calib-method: %v", err)
	}
	return nil
}

// open loads the model and the windows of the splits the job needs, or the built-in
// synthetic model and data when allowed and no model is given.
func (f *Input) open(allowSynthetic bool, need dataNeed) (*Source, *Data, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	if f.Model == "" {
		if !allowSynthetic {
			return nil, nil, usagef("--model is required")
		}
		if f.Data != "" {
			return nil, nil, usagef("--data needs --model (the built-in synthetic model brings its own data)")
		}
		src := Synthetic()
		d, err := SyntheticData(src, min(f.SeqLen, 128), f.dataOptions())
		return src, d, err
	}
	if f.Data == "" {
		return nil, nil, usagef("--data is required with --model")
	}
	if err := checkData(f.Model, f.Data); err != nil {
		return nil, nil, err
	}
	src, err := OpenSource(f.Model, f.Tokenizer)
	if err != nil {
		return nil, nil, err
	}
	if src.Tok == nil && !isJSONL(f.Data) {
		src.Close()
		return nil, nil, usagef("no tokenizer found for %s: give --tokenizer", f.Model)
	}
	d, err := loadData(f.Data, src.Tok, src.Cfg.Vocab, f.dataOptions(), need)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, d, nil
}

func (f *Input) bos(src *Source) int {
	if src.Tok != nil {
		return src.Tok.BOS()
	}
	return 1
}

// quantizers calibrates what the schemes need: activation thresholds when a static W8A8
// scheme is among them (or from CalibTable), GPTQ Hessians when weights below 8 bits use
// GPTQ.
func (f *Input) quantizers(env Env, src *Source, d *Data, schemes []quant.Recipe) (*Quantizers, error) {
	qz := &Quantizers{ScaleDType: tensor.F16}
	// Hessians are needed by every recipe GPTQ rounds: those asking for it (+gptq), and
	// the default rounding of weights below 8 bits under --rounding gptq.
	needAmax, needGPTQ := false, false
	for _, c := range schemes {
		needAmax = needAmax || c.Act == quant.ActStatic
		needGPTQ = needGPTQ || c.Rounding == quant.RoundGPTQ || c.Rounding == quant.RoundDefault && lowBit(c) && f.Int4 == "gptq"
	}
	if needAmax && f.CalibTable != "" {
		_, amax, err := tableAmax(f.CalibTable, linearNames(src))
		if err != nil {
			return nil, err
		}
		qz.Amax, needAmax = amax, false
		env.logf("activation thresholds for %d tensors from %s\n", len(amax), f.CalibTable)
	}
	if !needAmax && !needGPTQ {
		return qz, nil
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, err
	}
	if needAmax {
		meth, _ := calib.ParseMethod(f.CalibMethod)
		amax, n, err := calibrun.LayerThresholds(m, d.Calib, calib.DefaultOptions(meth), f.Batch)
		if err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
		qz.Amax = amax
		env.logf("calibrated %d activation thresholds (%s) on %d tokens\n", len(amax), f.CalibMethod, n)
	}
	if needGPTQ {
		hs, err := collect.Hessians(m, d.Calib, f.Batch, nil)
		if err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
		qz.LowBit, qz.Hessians = GPTQ(hs, BestGPTQ), hs
		env.logf("collected GPTQ Hessians for %d layers\n", len(hs))
	}
	return qz, nil
}

// tableAmax reads the activation threshold of every layer in layers from a calibration
// table (calib.Table.AmaxFor: one rule for missing and empty entries).
func tableAmax(path string, layers []string) (*calib.Table, map[string]float32, error) {
	t, err := calib.ReadTable(path)
	if err != nil {
		return nil, nil, err
	}
	amax := make(map[string]float32, len(layers))
	for _, l := range layers {
		a, err := t.AmaxFor(l)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		amax[l] = a
	}
	return t, amax, nil
}

// ParseRecipes reads a comma-separated list of candidate schemes (no w16: it has no damage
// to measure).
func ParseRecipes(s string) ([]quant.Recipe, error) {
	var out []quant.Recipe
	for _, p := range strings.Split(s, ",") {
		c, err := quant.ParseRecipe(strings.TrimSpace(p))
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
