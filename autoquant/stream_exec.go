package autoquant

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/calibrun"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/model"
)

// The streaming pipeline computes one decoder block at a time through an executor: the
// CPU model (hostExec, the reference) or, in cuda-tagged builds, a GPU block runner. A
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
	head(st state) ([][]float32, error)
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

// hostExec is the CPU executor over a (lazy) model.
type hostExec struct {
	m    *model.Model
	busy time.Duration
}

func newHostExec(m *model.Model) *hostExec { return &hostExec{m: m} }

func (e *hostExec) model() *model.Model { return e.m }
func (e *hostExec) device() string      { return "cpu" }
func (e *hostExec) seconds() float64    { return e.busy.Seconds() }
func (e *hostExec) sync(int)            {}
func (e *hostExec) free(state)          {}

func (e *hostExec) embed(tokens [][]int) (state, error) { return e.m.Embed(tokens) }

func (e *hostExec) run(st state, b int, obs *observer, first int) error {
	return e.pass(st, b, obs, first, false)
}

func (e *hostExec) observe(st state, b int, obs *observer, first int) error {
	return e.pass(st, b, obs, first, true)
}

func (e *hostExec) pass(st state, b int, obs *observer, first int, probe bool) error {
	h := st.(*model.Hidden)
	var hooks []model.Hook
	if obs != nil && obs.hess != nil {
		hooks = append(hooks, obs.hess.Hook())
	}
	if obs != nil && obs.hist != nil {
		hooks = append(hooks, obs.hist.Hook(first, h.Lengths()))
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
	t0 := time.Now()
	var err error
	if probe {
		names := e.m.BlockLinearNames(b)
		err = e.m.ProbeBlock(h, b, names[len(names)-1], hook)
	} else {
		err = e.m.RunBlocks(h, b, b+1, hook)
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

func (e *hostExec) head(st state) ([][]float32, error) {
	t0 := time.Now()
	lg, err := e.m.Head(st.(*model.Hidden))
	e.busy += time.Since(t0)
	return lg, err
}

func (e *hostExec) clone(st state) (state, error) { return st.(*model.Hidden).Clone(), nil }

func (e *hostExec) toHost(st state) (*model.Hidden, error) { return st.(*model.Hidden), nil }

func (e *hostExec) fromHost(h *model.Hidden) (state, error) { return h, nil }

// stateBytes is the size of a batch's residual stream.
func stateBytes(h *model.Hidden) int64 { return int64(len(h.X)) * 4 }

// checkExec rejects an executor whose model does not match the pipeline's configuration.
func checkExec(e executor, blocks int) error {
	if got := e.model().Blocks(); got != blocks {
		return fmt.Errorf("stream: executor model has %d blocks, want %d", got, blocks)
	}
	return nil
}
