package autoquant

// The calibrated path of `autoq quantize`: --method gptq and --search act-mse run the model
// over calibration text to collect each linear layer's input Hessian H = sum x x^T, then
// quantize every linear layer with package gptq. The weights come out as ordinary autoq
// QTensors, written by the same code as the plain path.

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// calibratedQuant is how the calibrated path rounds (rtn/gptq) and clips (act-mse or not).
type calibratedQuant struct {
	method collect.Method
	clip   gptq.Clip
	name   string // for the report: "gptq", "gptq+act-mse", "rtn+act-mse"
	groups gptq.GroupOrder
	mode   collect.Mode // where the Hessians come from (--sequential)
}

// calibration returns the calibrated settings, or nil when --method rtn with a plain
// search needs no model run.
func (q *QuantizeOptions) calibration() (*calibratedQuant, error) {
	method, err := collect.ParseMethod(q.Method)
	if err != nil {
		return nil, usagef("--method: %v", err)
	}
	if q.ActOrderGroups == "" {
		q.ActOrderGroups = "static"
	}
	actMSE := q.Search == "act-mse"
	if method == collect.RTN && !actMSE {
		if q.Sequential != "" && q.Sequential != "off" {
			return nil, usagef("--sequential is only used by --method gptq or --search act-mse")
		}
		if q.Data != "" {
			return nil, usagef("--data is only used by --method gptq or --search act-mse")
		}
		return nil, nil
	}
	c := &calibratedQuant{method: method, clip: gptq.ClipNone, name: q.Method}
	if c.groups, err = gptq.ParseGroupOrder(q.ActOrderGroups); err != nil {
		return nil, usagef("--act-order-groups: %v", err)
	}
	if c.mode, err = parseSequential(q.Sequential); err != nil {
		return nil, err
	}
	switch {
	case actMSE:
		c.clip, c.name = gptq.ClipActMSE, q.Method+"+act-mse"
	case q.Search == "mse":
		c.clip = gptq.ClipMSE
		c.name += "+mse"
	case q.Search != "max":
		return nil, usagef("--method gptq takes --search max, mse or act-mse, not %s", q.Search)
	}
	if q.Data == "" {
		return nil, usagef("--method gptq and --search act-mse need --data FILE (calibration text)")
	}
	if q.SeqLen < 2 || q.CalibTokens < q.SeqLen {
		return nil, usagef("--seq-len must be >= 2 and --calib-tokens >= --seq-len (got %d, %d)", q.SeqLen, q.CalibTokens)
	}
	return c, nil
}

// parseSequential reads --sequential: off, block or layer (collect.ParseMode). The
// library's full-precision targets (collect.Options.FPTarget) are not offered: measured on
// stories260K they did not help (gptq/README.md).
func parseSequential(s string) (collect.Mode, error) {
	mode, err := collect.ParseMode(s)
	if err != nil {
		return 0, usagef("--sequential: %v", err)
	}
	return mode, nil
}

// quantizeCalibrated loads the model at q.Path, collects Hessians over the first
// (calibration) half of --data, and quantizes every linear layer. The result is keyed by
// checkpoint tensor name ("<layer>.weight").
//
// GPTQ runs on the device of eng when it can (a CUDA backend, natural column order, i.e.
// --act-order=false); a layer the device refuses (e.g. act-mse clipping on groups wider
// than the kernel takes) falls back to the CPU, which is also where act-order runs.
func quantizeCalibrated(env Env, q *QuantizeOptions, c *calibratedQuant, s quant.Scheme, eng *engine) (map[string]*quant.QTensor, error) {
	if err := checkData(q.Path, q.Data); err != nil {
		return nil, err
	}
	m, tok, err := loadModelAndTokenizer(q.Path, q.Tokenizer, q.Data, q.Rotate)
	if err != nil {
		return nil, err
	}
	w, err := eval.OpenWindows(q.Data, tok, m.Config.Vocab, eval.DataOptions{SeqLen: q.SeqLen, MaxTokens: q.CalibTokens, Split: "calib"})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	seqs, err := eval.ReadAll(w)
	if err != nil {
		return nil, err
	}
	env.logf("calibration: %d tokens in %d windows from the first half of %s\n", w.Tokens(), len(seqs), q.Data)
	opt := gptq.Options{ActOrder: q.ActOrder, Damp: q.Damp, Groups: c.groups, Clip: c.clip}
	dev, onDevice := eng.b.(backend.GPTQRunner)
	useDevice := c.method == collect.GPTQ && onDevice && !q.ActOrder
	switch {
	case useDevice:
		env.logf("gptq: on %s\n", eng.name)
	case c.method == collect.GPTQ && onDevice:
		env.logf("gptq: on the CPU (act-order is CPU-only; --act-order=false runs GPTQ on %s)\n", eng.name)
	}
	// layer quantizes w (the weights of one linear layer of m) against its Hessian.
	layer := func(name string, w []float32, h *gptq.Hessian) (*quant.QTensor, gptq.Report, error) {
		wt := m.Weight(name + ".weight")
		rows, cols := wt.Shape[0], wt.Shape[1]
		ls := s.FitCols(cols)
		switch {
		case c.method == collect.RTN:
			qt, err := gptq.RTN(name, w, rows, cols, ls, h, c.clip)
			return qt, gptq.Report{Layer: name}, err
		case useDevice:
			qt, rep, err := dev.GPTQ(name, w, rows, cols, ls, h, opt)
			if err == nil {
				return qt, rep, nil
			}
			env.logf("note: %s: GPU GPTQ declined (%v): running it on the CPU\n", name, err)
		}
		return gptq.Quantize(name, w, rows, cols, ls, h, opt)
	}
	qs := map[string]*quant.QTensor{}
	var reports []gptq.Report
	if c.mode == collect.OneShot {
		bar := progress.New(env.bars(), "hessians", int64(len(seqs)), "windows")
		last := 0
		hs, err := collect.Hessians(m, seqs, 8, func(done int) { bar.Add(int64(done - last)); last = done })
		bar.Done()
		if err != nil {
			return nil, err
		}
		for _, name := range m.LinearNames() {
			qt, rep, err := layer(name, m.Weight(name+".weight").ToF32(), hs[name])
			if err != nil {
				return nil, fmt.Errorf("quantize: %w", err)
			}
			qs[name], reports = qt, append(reports, rep)
		}
	} else {
		env.logf("sequential (%s): each block's Hessians from the already-quantized blocks before it\n", c.mode)
		bar := progress.New(env.bars(), "sequential", int64(m.Blocks()), "blocks")
		last := 0
		so := collect.Options{Mode: c.mode, Batch: 8, Progress: func(done, _ int) { bar.Add(int64(done - last)); last = done }}
		err := collect.SequentialWith(m, seqs, so, func(name string, in collect.LayerInput) (model.Linear, error) {
			qt, rep, err := layer(name, in.Target, in.H)
			if err != nil {
				return nil, err
			}
			qs[name], reports = qt, append(reports, rep)
			var bias []float32
			if b := m.Weight(name + ".bias"); b != nil {
				bias = b.F32()
			}
			return model.NewFakeQuant(qt, bias, quant.ActNone, 0)
		})
		bar.Done()
		if err != nil {
			return nil, err
		}
	}
	for _, r := range reports {
		if r.Warning != "" {
			env.logf("warning: %s: %s\n", r.Layer, r.Warning)
		}
	}
	out := make(map[string]*quant.QTensor, len(qs))
	for layer, qt := range qs {
		c := *qt
		c.Name = strings.TrimSuffix(layer, ".weight") + ".weight"
		out[c.Name] = &c
	}
	return out, nil
}
