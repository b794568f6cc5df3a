package autoquant

import (
	"fmt"
	"os"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/quant"
)

// qLayerMeta is one quantized layer of a block as the quantize pass stores it (its QTensor
// is in the block's safetensors file, autoq's layout).
type qLayerMeta struct {
	Name   string             `json:"name"`
	Recipe string             `json:"recipe"`
	Act    *export.Activation `json:"act,omitempty"`
}

type qRecord struct {
	Layers []qLayerMeta `json:"layers"`
}

// usesHessian reports whether recipe c is rounded with GPTQ under the run's options (the
// rule of Quantizers.Quantize).
func (p *pipeline) usesHessian(c quant.Recipe) bool {
	if c.Full {
		return false
	}
	return c.Rounding == quant.RoundGPTQ || c.Rounding == quant.RoundDefault && lowBit(c) && p.needGPTQ()
}

// quantize is the second pass: each block's layers quantized with the plan's schemes and
// stored in the work directory. GPTQ layers are quantized against the Hessians of their
// block's inputs over the calibration windows: as the full-precision blocks before produce
// them (the default: the first pass's numbers), or with Sequential as the blocks already
// quantized produce them (GPTQ's sequential option, llm-compressor's sequential pipeline;
// the block itself runs in full precision for its statistics, then quantized to make the
// next block's input). A resumed run keeps the blocks already stored.
func (p *pipeline) quantize() error {
	m, N := p.m, p.m.Blocks()
	blockH := make([]bool, N) // block b needs its Hessians: a planned GPTQ layer not in the cache
	lastH := -1
	for b := 0; b < N; b++ {
		cached, err := p.candidateNames(b)
		if err != nil {
			return err
		}
		for _, name := range m.BlockLinearNames(b) {
			c, err := p.plan.SchemeFor(name)
			if err != nil {
				return err
			}
			blockH[b] = blockH[b] || p.usesHessian(c) && !cached[candName(name, c)]
		}
		if blockH[b] {
			lastH = b
		}
	}
	seq := p.so.Sequential
	var cal *stream
	if lastH >= 0 {
		cal = newStream("quant", p.ex, p.opt.Data.Calib, p.opt.Batch, p.mem.States, p.work.path("spill"))
		defer cal.release()
		if err := cal.start(); err != nil {
			return fmt.Errorf("quantize: %w", err)
		}
	}
	p.bar = p.newBar("quantize", int64(N), "blocks")
	defer p.bar.Done()
	for b := 0; b < N; b++ {
		if cal != nil && b > lastH {
			cal.release() // no later block needs statistics
			cal = nil
		}
		layers, stored, err := p.loadQuantBlock(b)
		if err != nil {
			return err
		}
		if !stored {
			var hs map[string]*gptq.Hessian
			if blockH[b] {
				acc := collect.NewAccumulator(m.BlockLinearNames(b))
				obs := &observer{hess: acc}
				if seq || cal == nil {
					err = cal.observe(b, obs)
				} else {
					err = cal.advance(b, obs)
				}
				if err == nil {
					hs, err = acc.Hessians()
				}
				if err != nil {
					return fmt.Errorf("quantize: %w", err)
				}
			} else if cal != nil && !seq {
				if err := cal.advance(b, nil); err != nil {
					return err
				}
			}
			qz := &Quantizers{Amax: p.amax, ScaleDType: p.serve}
			if p.needGPTQ() {
				qz.LowBit = GPTQ(hs, BestGPTQ)
			}
			cands, err := p.loadCandidates(b)
			if err != nil {
				return err
			}
			if layers, err = p.quantizeBlock(b, qz, cands); err != nil {
				return err
			}
		} else if cal != nil && !seq {
			if err := cal.advance(b, nil); err != nil {
				return err
			}
		}
		p.layers = append(p.layers, layers...)
		if cal != nil && seq { // the next block's input: this block quantized
			for _, l := range layers {
				if err := m.SetLinear(l.Name, l.Linear); err != nil {
					return err
				}
			}
			p.ex.sync(b)
			err := cal.advance(b, nil)
			m.ResetBlock(b)
			p.ex.sync(b)
			if err != nil {
				return err
			}
		}
		for _, l := range layers { // keep what export and the checks need, not the weights
			l.Q, l.Linear = nil, nil
		}
		p.bar.Add(1)
		if err := p.env.stopped(); err != nil {
			return err
		}
	}
	return nil
}

// quantizeBlock quantizes block b's planned layers and stores them. A layer whose planned
// candidate is in cands (the candidate cache) is taken from there.
func (p *pipeline) quantizeBlock(b int, qz *Quantizers, cands map[string]*quant.QTensor) ([]*Layer, error) {
	var layers []*Layer
	var qs []*quant.QTensor
	var rec qRecord
	for _, name := range p.m.BlockLinearNames(b) {
		c, err := p.plan.SchemeFor(name)
		if err != nil {
			return nil, err
		}
		if c.Full {
			continue
		}
		l := &Layer{Name: name, Recipe: c, Q: cands[candName(name, c)]}
		if l.Q != nil {
			l.Q.Name = name
		} else if l, err = qz.Quantize(p.m, name, c); err != nil {
			return nil, err
		}
		qs = append(qs, l.Q)
		rec.Layers = append(rec.Layers, qLayerMeta{Name: name, Recipe: c.String(), Act: l.Act})
		layers = append(layers, l)
	}
	if err := os.MkdirAll(p.work.path("quant"), 0o755); err != nil {
		return nil, err
	}
	if err := writeQTensors(p.work.path(blockFile("quant", b, ".safetensors")), qs); err != nil {
		return nil, err
	}
	return layers, p.work.save(blockFile("quant", b, ".json"), rec)
}

// loadQuantBlock reads block b's stored layers (stored false when the block is not done).
// With Sequential the layers come back with their fake-quantized Linear, to be plugged in.
func (p *pipeline) loadQuantBlock(b int) ([]*Layer, bool, error) {
	var rec qRecord
	ok, err := p.work.load(blockFile("quant", b, ".json"), &rec)
	if err != nil || !ok {
		return nil, false, err
	}
	qs, err := p.readQuantBlock(b)
	if err != nil {
		return nil, false, err
	}
	var out []*Layer
	for _, lm := range rec.Layers {
		c, err := quant.ParseRecipe(lm.Recipe)
		if err != nil {
			return nil, false, fmt.Errorf("work directory: block %d: %w", b, err)
		}
		q := qs[lm.Name]
		if q == nil {
			return nil, false, fmt.Errorf("work directory: block %d has no quantized weight for %s", b, lm.Name)
		}
		l := &Layer{Name: lm.Name, Recipe: c, Q: q, Act: lm.Act}
		if p.so.Sequential {
			if l.Linear, err = fakeQuantOf(p.m, l); err != nil {
				return nil, false, err
			}
		}
		out = append(out, l)
	}
	return out, true, nil
}

// readQuantBlock reads the QTensors stored for block b.
func (p *pipeline) readQuantBlock(b int) (map[string]*quant.QTensor, error) {
	qs, err := readQTensors(p.work.path(blockFile("quant", b, ".safetensors")))
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", b, err)
	}
	return qs, nil
}
