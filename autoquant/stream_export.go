package autoquant

import (
	"bytes"
	"fmt"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// exportStreaming writes the compressed-tensors export into dir (a staging directory) from
// the source's tensors and the quantized blocks in the work directory, one layer in memory
// at a time: the bytes ExportModel + export.Write give for the same layers.
func (p *pipeline) exportStreaming(dir string, extra map[string][]byte) error {
	quantized := map[string]*Layer{}
	var names []string
	for _, l := range p.layers {
		quantized[l.Name] = l
		names = append(names, l.Name)
	}
	sm := &export.StreamModel{Config: map[string]any{}, Files: p.src.Files, Extra: extra, Quantized: names}
	for k, v := range p.src.Config {
		sm.Config[k] = v
	}
	if p.src.DType() == tensor.F32 && p.serve != tensor.F32 {
		sm.Config["torch_dtype"] = torchDType(p.serve)
	}
	for _, nt := range p.src.Tensors {
		if n, ok := cutWeight(nt.Name); ok && quantized[n] != nil {
			continue
		}
		sm.Dense = append(sm.Dense, nt)
	}
	for _, name := range p.names {
		if quantized[name] == nil {
			sm.Ignore = append(sm.Ignore, name)
		}
	}
	sm.Ignore = append(sm.Ignore, "lm_head")
	cache := map[int]map[string]*quant.QTensor{} // the last block read
	sm.Load = func(name string) (*export.Layer, error) {
		b := blockOfName(name)
		qs, ok := cache[b]
		if !ok {
			var err error
			if qs, err = p.readQuantBlock(b); err != nil {
				return nil, err
			}
			clear(cache)
			cache[b] = qs
		}
		l := quantized[name]
		if qs[name] == nil {
			return nil, fmt.Errorf("work directory: block %d has no quantized weight for %s", b, name)
		}
		return &export.Layer{Name: name, Q: qs[name], Act: l.Act}, nil
	}
	if p.src.ck != nil {
		sm.Section = p.src.ck.Section
	}
	sm.Written = func(name string) {
		if p.src.ck != nil {
			p.src.ck.Release(name)
		}
		p.bar.Add(1)
	}
	p.bar = p.newBar("export", int64(len(sm.Dense)), "tensors")
	defer p.bar.Done()
	return export.WriteStream(dir, sm, export.Options{ScaleDType: p.serve})
}

// cutWeight returns the module of a ".weight" tensor name.
func cutWeight(name string) (string, bool) {
	const suf = ".weight"
	if len(name) > len(suf) && name[len(name)-len(suf):] == suf {
		return name[:len(name)-len(suf)], true
	}
	return "", false
}

// blockOfName is the block index of a linear layer name (model.layers.N....).
func blockOfName(name string) int {
	var b int
	if _, err := fmt.Sscanf(name, "model.layers.%d.", &b); err != nil {
		return -1
	}
	return b
}

// fakeQuantOf is the fake-quantized layer of l (its QTensor and activation settings).
func fakeQuantOf(m *model.Model, l *Layer) (*model.FakeQuant, error) {
	return fakeQuant(m, l.Name, l.Q, l.Act)
}

// fakeQuant is the fake-quantized layer name of m: weights q, activations as act says (nil:
// weight-only), m's bias if it has one.
func fakeQuant(m *model.Model, name string, q *quant.QTensor, a *export.Activation) (*model.FakeQuant, error) {
	act, amax := quant.ActNone, float32(0)
	if a != nil {
		act = quant.ActDynamic
		if !a.Dynamic {
			act, amax = quant.ActStatic, a.Amax
		}
	}
	var bias []float32
	if b := m.Weight(name + ".bias"); b != nil {
		bias = b.F32()
	}
	return model.NewFakeQuant(q, bias, act, amax)
}

// exportedModel opens the staged export as a lazy model: dense tensors from the export,
// each quantized layer decoded from it when its block is read (the fake-quantized layer
// of the read-back QTensor, as LoadExported builds; with kernels, the integer reference
// kernel where the layer has one, as KernelModel plugs).
func (p *pipeline) exportedModel(r *export.Reader, kernels bool) (*model.Model, error) {
	cfg := p.src.Cfg
	opt := model.LazyOptions{MaxBlockBytes: p.mem.blockBudget(), Release: func(names []string) {
		for _, n := range names {
			r.Release(n)
		}
	}}
	opt.Linear = func(name string) (model.Linear, error) {
		el, ok, err := r.Layer(name)
		if err != nil || !ok {
			return nil, err
		}
		// The layer built below holds copies (FakeQuant copies its QTensor; the kernels' copy
		// is made here), so the layer's mapped pages leave the resident set at once.
		defer r.ReleaseLayer(name)
		l := &Layer{Name: name, Q: el.Q, Act: el.Act}
		var bias []float32
		if t, err := r.Tensor(name + ".bias"); err == nil {
			bias = append([]float32(nil), t.ToF32()...)
		}
		if kernels {
			s := l.Q.Scheme
			w8a8 := s.Bits == 8 && s.Symmetric && s.Granularity == quant.PerChannel && l.Act != nil && l.Act.Dynamic
			if s.Bits == 4 || w8a8 {
				q := *l.Q
				q.Data = bytes.Clone(q.Data)
				return &model.QuantLinear{Q: &q, Bias: bias, N: l.Q.Rows, K: l.Q.Cols, W8A8: w8a8}, nil
			}
		}
		act, amax := quant.ActNone, float32(0)
		if l.Act != nil {
			act = quant.ActDynamic
			if !l.Act.Dynamic {
				act, amax = quant.ActStatic, l.Act.Amax
			}
		}
		return model.NewFakeQuant(l.Q, bias, act, amax)
	}
	opt.Reuse = func(name string) *tensor.Tensor {
		// The export's embedding and lm_head are the source's tensors unchanged: share the
		// run model's copies (checked byte for byte) rather than holding two.
		v := p.m.FixedTensor(name)
		a, err := r.Tensor(name)
		if v == nil || err != nil {
			return nil
		}
		b := p.src.Tensor(name)
		same := b != nil && a.DType == b.DType && len(a.Data) == len(b.Data) && p.sameBytes(r, name, a.Data, b.Data)
		p.src.release(name)
		if !same {
			return nil
		}
		return v
	}
	m, err := model.NewLazy(cfg, exportTensors{r}, opt)
	if err != nil {
		return nil, fmt.Errorf("verify: reading the export back: %w", err)
	}
	return m, nil
}

type exportTensors struct{ r *export.Reader }

func (t exportTensors) Tensor(name string) (*tensor.Tensor, error) { return t.r.Tensor(name) }

// verifyStreaming evaluates the export read back against the full-precision model on the
// evaluation windows, both one block at a time (their residual streams side by side):
// CompareModels' numbers.
func (p *pipeline) verifyStreaming(cand *model.Model) (*VerifyReport, error) {
	base := p.baseline
	if base.Config.Vocab != cand.Config.Vocab {
		return nil, fmt.Errorf("verify: baseline vocabulary %d differs from candidate's %d", base.Config.Vocab, cand.Config.Vocab)
	}
	wins := p.opt.Data.Eval
	bex := p.ex
	if base == p.ex.model() { // its layers were reset after quantize: read every block again
		for b := 0; b < base.Blocks(); b++ {
			p.ex.sync(b)
		}
	} else {
		e, err := p.newExec(base)
		if err != nil {
			return nil, fmt.Errorf("verify: baseline: %w", err)
		}
		defer e.close()
		bex = e
	}
	cex, err := p.newExec(cand)
	if err != nil {
		return nil, fmt.Errorf("verify: candidate: %w", err)
	}
	defer cex.close()
	bex0 := bex.seconds()
	bs := newStream("eval-fp", bex, wins, p.sensBatch(), p.mem.States, p.work.path("spill"))
	cs := newStream("eval-q", cex, wins, p.sensBatch(), p.mem.States, p.work.path("spill"))
	defer bs.release()
	defer cs.release()
	if err := bs.start(); err != nil {
		return nil, fmt.Errorf("verify: baseline: %w", err)
	}
	if err := cs.start(); err != nil {
		return nil, fmt.Errorf("verify: candidate: %w", err)
	}
	N := base.Blocks()
	p.bar = p.newBar("verify", int64(N), "blocks")
	defer p.bar.Done()
	for b := 0; b < N; b++ {
		if err := bs.advance(b, nil); err != nil {
			return nil, fmt.Errorf("verify: baseline: %w", err)
		}
		if err := cs.advance(b, nil); err != nil {
			return nil, fmt.Errorf("verify: candidate: %w", err)
		}
		p.bar.Add(1)
		if err := p.env.stopped(); err != nil {
			return nil, err
		}
	}
	V, bos := base.Config.Vocab, p.opt.BOS
	var refAcc, acc eval.Accumulator
	// Both heads a chunk of rows at a time: one chunk of logits each.
	err = heads([]*stream{bs, cs}, func(w, from, to int, lg [][]float32) error {
		refAcc.AddPositions(wins[w], from, to, lg[0], nil, V, bos)
		acc.AddPositions(wins[w], from, to, lg[1], lg[0], V, bos)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if refAcc.Scored == 0 {
		return nil, fmt.Errorf("eval: no tokens were scored (empty data?)")
	}
	g := p.opt.Gate
	rep := &VerifyReport{Tokens: countTokens(wins), Scored: acc.Scored, BaselinePPL: refAcc.Perplexity(), CandidatePPL: acc.Perplexity(),
		KL: acc.KL(), Top1: acc.Top1(), MaxPPLIncrease: g.MaxPPLIncrease, MaxKL: g.MaxKL,
		BaselineSec: bex.seconds() - bex0, CandidateSec: cex.seconds()}
	rep.PPLIncrease = rep.CandidatePPL/rep.BaselinePPL - 1
	rep.applyGate()
	return rep, nil
}
