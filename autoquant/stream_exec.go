package autoquant

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/model"
)

// The streaming pipeline computes one decoder block at a time through an executor: the
// CPU model (model.HostBlocks, the reference) or, in cuda-tagged builds, a GPU block runner. A
// state is one batch's residual stream at a block boundary, held where the executor
// computes (*model.Hidden on the CPU, device memory on a GPU).
type state any

// executor runs a model's decoder block by block. Its model is the host model: plugging a
// layer (SetLinear) changes what the executor runs once sync(b) is called.
type executor interface {
	model() *model.Model
	embed(tokens [][]int) (state, error)
	// run runs block b on st in place; obs (may be nil) accumulates statistics of the
	// block's linear inputs for the batch holding windows first, first+1, ...
	run(st state, b int, obs *observer, first int) error
	// observe is run's statistics without changing st (the block runs on a copy, only as
	// far as its last linear layer's input).
	observe(st state, b int, obs *observer, first int) error
	// headRows is the head on rows [lo, hi) of st's batch: their logits, flattened.
	headRows(st state, lo, hi int) ([]float32, error)
	clone(st state) (state, error)
	toHost(st state) (*model.Hidden, error)
	fromHost(h *model.Hidden) (state, error)
	free(st state)
	// sync says block b's layers changed in the model (a device uploads it again).
	sync(b int)
	// seconds is the compute time spent so far (run and head), for the report.
	seconds() float64
	device() string
}

// observer collects what a calibration pass needs from a block's linear inputs.
type observer struct {
	hess *collect.Accumulator // GPTQ Hessians (nil: none)
	hist *calibrun.BlockHists // activation histograms (nil: none)
}

// blockExec is the executor over a model.BlockRunner: model.HostBlocks (the CPU reference)
// or a GPU's block runner (package gpurunner), as newExec opens them.
type blockExec struct {
	m    *model.Model
	r    model.BlockRunner
	dev  string
	busy time.Duration
	// fetching holds the accumulators whose device sums are still to be fetched (Defer).
	fetching map[*collect.Accumulator]bool
}

// newExec opens the block runner of the run's device for m (the CPU's for a CPU device;
// so.runner when a test sets it).
func (p *pipeline) newExec(m *model.Model) (*blockExec, error) {
	dev := p.so.Device
	var r model.BlockRunner
	var err error
	if p.so.runner != nil {
		r = p.so.runner(m)
	} else if r, err = model.OpenBlockRunner(dev, m); err != nil {
		return nil, err
	}
	name := dev.String()
	if info := r.Info(); info.Name != "" {
		name += " (" + info.Name + ")"
	}
	return &blockExec{m: m, r: r, dev: name}, nil
}

func (e *blockExec) model() *model.Model { return e.m }
func (e *blockExec) device() string      { return e.dev }
func (e *blockExec) seconds() float64    { return e.busy.Seconds() }
func (e *blockExec) sync(b int)          { e.r.Invalidate(b) }
func (e *blockExec) free(st state)       { e.r.Free(st) }
func (e *blockExec) close() error        { return e.r.Close() }

func (e *blockExec) embed(tokens [][]int) (state, error) { return e.r.Embed(tokens) }

func (e *blockExec) run(st state, b int, obs *observer, first int) error {
	return e.pass(st, b, obs, first, false)
}

func (e *blockExec) observe(st state, b int, obs *observer, first int) error {
	return e.pass(st, b, obs, first, true)
}

func (e *blockExec) pass(st state, b int, obs *observer, first int, probe bool) error {
	var hooks []model.Hook
	gr, onDevice := e.r.(model.GramBlockRunner)
	if obs != nil && obs.hess != nil && !onDevice {
		hooks = append(hooks, obs.hess.Hook())
	}
	if obs != nil && obs.hist != nil {
		lengths, err := e.r.Lengths(st)
		if err != nil {
			return err
		}
		hooks = append(hooks, obs.hist.Hook(first, lengths))
	}
	var hook model.Hook
	switch len(hooks) {
	case 1:
		hook = hooks[0]
	case 2:
		hook = func(name string, x []float32, M, K int) {
			hooks[0](name, x, M, K)
			hooks[1](name, x, M, K)
		}
	}
	until := ""
	if probe {
		names := e.m.BlockLinearNames(b)
		until = names[len(names)-1]
	}
	t0 := time.Now()
	var err error
	if obs != nil && obs.hess != nil && onDevice { // Hessians summed where the block runs
		acc := obs.hess
		err = gr.RunBlockGram(st, b, hook, until, acc.Wants)
		if !e.fetching[acc] {
			if e.fetching == nil {
				e.fetching = map[*collect.Accumulator]bool{}
			}
			e.fetching[acc] = true
			acc.Defer(func() error {
				delete(e.fetching, acc)
				gs, err := gr.TakeGrams(acc.Wants)
				for _, g := range gs {
					if err == nil {
						err = acc.AddGram(g.Names, g.K, g.Tokens, g.Sum)
					}
				}
				return err
			})
		}
	} else {
		err = e.r.RunBlock(st, b, hook, until)
	}
	e.busy += time.Since(t0)
	if obs != nil && obs.hess != nil {
		obs.hess.EndBatch()
		if err == nil {
			err = obs.hess.Err()
		}
	}
	return err
}

func (e *blockExec) headRows(st state, lo, hi int) ([]float32, error) {
	t0 := time.Now()
	lg, err := e.r.HeadRows(st, lo, hi)
	e.busy += time.Since(t0)
	return lg, err
}

func (e *blockExec) clone(st state) (state, error)           { return e.r.Clone(st) }
func (e *blockExec) toHost(st state) (*model.Hidden, error)  { return e.r.ToHost(st) }
func (e *blockExec) fromHost(h *model.Hidden) (state, error) { return e.r.FromHost(h) }

// checkExec rejects an executor whose model does not match the pipeline's configuration.
func checkExec(e executor, blocks int) error {
	if got := e.model().Blocks(); got != blocks {
		return fmt.Errorf("stream: executor model has %d blocks, want %d", got, blocks)
	}
	return nil
}
