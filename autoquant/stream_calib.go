package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
)

// blockRecord is what the calibration pass stores per block in the work directory.
type blockRecord struct {
	Part  *calibrun.BlockPart     `json:"histograms"`
	Sens  []plan.LayerSensitivity `json:"sensitivity"`
	Proxy []plan.LayerSensitivity `json:"proxy,omitempty"` // with exact: the proxy too, for the comparison
}

// calibrate is the first pass, one decoder block at a time over the calibration windows
// (full-precision inputs): the block's activation histograms and, when GPTQ or the proxy
// needs them, its input Hessians; then every candidate of every layer of the block is
// quantized and its damage measured (exact: from the block's cached full-precision input
// on the sensitivity windows forwards to the logits; proxy: the layer's output error under
// its input Hessian); then the streams move to the next block. Each block's result is
// stored as it completes, and a resumed run starts after the last stored block.
func (p *pipeline) calibrate() error {
	m, N := p.m, p.m.Blocks()
	rounds := 1
	if p.opt.RequireConverged {
		rounds = calibrun.DefaultRounds
	}
	bw, err := calibrun.NewBlockwise(m, p.opt.Data.Calib, nil, calibrun.Options{Batch: p.opt.Batch, Rounds: rounds, Calib: calib.DefaultOptions(p.opt.Calib)})
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	cal := newStream("calib", p.ex, p.opt.Data.Calib, p.opt.Batch, p.mem.States, p.work.path("spill"))
	defer cal.release()
	if err := cal.start(); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	var sens *stream
	if p.exact() {
		if p.ref, err = p.referenceLogits(); err != nil {
			return fmt.Errorf("sensitivity: %w", err)
		}
		sens = newStream("sens", p.ex, p.opt.Data.Sens, p.sensBatch(), p.mem.States, p.work.path("spill"))
		defer sens.release()
		if err := sens.start(); err != nil {
			return fmt.Errorf("sensitivity: %w", err)
		}
	}
	var px *stream // the proxy's windows at the current block boundary
	if !p.exact() || p.so.CompareProxy {
		wins := proxyWindows(p.opt.Data.Sens)
		if len(wins) == 0 {
			return fmt.Errorf("sensitivity: the proxy runs on the sensitivity windows: give --sens-tokens > 0")
		}
		px = newStream("proxy", p.ex, wins, p.opt.Batch, p.mem.States, p.work.path("spill"))
		defer px.release()
		if err := px.start(); err != nil {
			return fmt.Errorf("sensitivity: %w", err)
		}
	}
	needHess := p.exact() && p.needGPTQ() // the GPTQ candidates of exact sensitivity
	bar := progress.New(p.env.bars(), "calibrate+sensitivity", int64(N), "blocks")
	defer bar.Done()
	var sensRows, proxyRows []plan.LayerSensitivity
	for b := 0; b < N; b++ {
		var rec blockRecord
		ok, err := p.work.load(blockFile("calib", b, ".json"), &rec)
		if err != nil {
			return err
		}
		if ok = ok && rec.Part != nil && len(rec.Sens) == len(model.LinearSuffixes); ok {
			p.resumed++
		} else {
			if rec, err = p.calibrateBlock(b, bw, cal, px, sens, needHess); err != nil {
				return err
			}
			if err := p.work.save(blockFile("calib", b, ".json"), rec); err != nil {
				return err
			}
		}
		if ok {
			// A stored block: its histograms join the run; the streams still move past it.
			if err := bw.Add(rec.Part); err != nil {
				return fmt.Errorf("calibrate: stored block %d: %w", b, err)
			}
			if err := cal.advance(b, nil); err != nil {
				return err
			}
			for _, st := range []*stream{sens, px} {
				if st != nil {
					if err := st.advance(b, nil); err != nil {
						return err
					}
				}
			}
		}
		sensRows, proxyRows = append(sensRows, rec.Sens...), append(proxyRows, rec.Proxy...)
		bar.Add(1)
		if err := p.env.stopped(); err != nil {
			return err
		}
	}
	amax, tokens, diag, err := calibrun.ThresholdsOf(bw.Result())
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if p.opt.RequireConverged && !diag.Converged {
		return notConverged(diag)
	}
	p.amax, p.calTokens = amax, tokens
	p.sens = p.sensitivityOf(sensRows, p.exact())
	if p.so.CompareProxy && p.exact() {
		p.proxy = p.sensitivityOf(proxyRows, false)
	}
	return nil
}

// calibrateBlock runs block b's calibration and sensitivity (see calibrate); on return the
// calibration and sensitivity streams are at block b+1.
func (p *pipeline) calibrateBlock(b int, bw *calibrun.Blockwise, cal, px, sens *stream, needHess bool) (blockRecord, error) {
	obs := &observer{hist: bw.Block()}
	if needHess {
		obs.hess = collect.NewAccumulator(p.m.BlockLinearNames(b))
	}
	if err := cal.advance(b, obs); err != nil {
		return blockRecord{}, fmt.Errorf("calibrate: %w", err)
	}
	part, err := obs.hist.Done()
	if err != nil {
		return blockRecord{}, fmt.Errorf("calibrate block %d: %w", b, err)
	}
	if err := bw.Add(part); err != nil {
		return blockRecord{}, fmt.Errorf("calibrate block %d: %w", b, err)
	}
	amax, _, _, err := calibrun.ThresholdsOf(bw.Result())
	if err != nil {
		return blockRecord{}, fmt.Errorf("calibrate: %w", err)
	}
	var hs map[string]*gptq.Hessian
	if needHess {
		if hs, err = obs.hess.Hessians(); err != nil {
			return blockRecord{}, fmt.Errorf("calibrate: %w", err)
		}
	}
	qz := &Quantizers{Amax: amax, ScaleDType: p.serve}
	if hs != nil {
		qz.LowBit = GPTQ(hs, BestGPTQ)
	}
	rec := blockRecord{Part: part}
	var keep []*quant.QTensor
	if rec.Sens, rec.Proxy, keep, err = p.blockSensitivity(b, qz, px, sens); err != nil {
		return blockRecord{}, err
	}
	if err := p.saveCandidates(b, keep); err != nil {
		return blockRecord{}, fmt.Errorf("sensitivity: keeping block %d's candidates: %w", b, err)
	}
	for _, st := range []*stream{sens, px} {
		if st != nil {
			if err := st.advance(b, nil); err != nil {
				return blockRecord{}, fmt.Errorf("sensitivity: %w", err)
			}
		}
	}
	return rec, nil
}

// needGPTQ reports whether some candidate is rounded with GPTQ (and so needs Hessians).
func (p *pipeline) needGPTQ() bool {
	if p.opt.Int4Method == "" || p.opt.Int4Method == "gptq" {
		return true
	}
	for _, c := range p.opt.Schemes {
		if c.Rounding == quant.RoundGPTQ {
			return true
		}
	}
	return false
}

// exact reports whether sensitivity is measured to the logits (else the proxy).
func (p *pipeline) exact() bool { return p.so.Sensitivity != SensProxy }

// sensitivityOf assembles the sensitivity table from the per-block rows.
func (p *pipeline) sensitivityOf(rows []plan.LayerSensitivity, exact bool) *plan.Sensitivity {
	s := &plan.Sensitivity{Model: p.rep.Model, DType: p.src.DType().String(), Layers: rows}
	for _, c := range p.opt.Schemes {
		s.Schemes = append(s.Schemes, c.String())
	}
	if exact {
		s.Tokens, s.BaselinePPL = countTokens(p.opt.Data.Sens), p.ref.basePPL
		s.Method = fmt.Sprintf("one layer quantized at a time; KL vs cached full-precision logits over %d tokens", s.Tokens)
	} else {
		s.Tokens = countTokens(proxyWindows(p.opt.Data.Sens))
		s.Method = fmt.Sprintf("proxy: the relative squared error each layer's round-to-nearest candidate causes at its block's output over %d tokens; no forward to the logits", s.Tokens)
	}
	return s
}
