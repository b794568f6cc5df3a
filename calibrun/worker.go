package calibrun

import (
	"fmt"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
)

// Group is one distinct linear-layer input: the layers in Members all read the same
// activation (q/k/v, gate/up), so it is calibrated once and every member gets the same
// histogram and threshold. Name is the first member in forward order (e.g.
// model.layers.0.self_attn.q_proj).
type Group struct {
	Name     string   `json:"name"`
	Members  []string `json:"members"`
	Channels int      `json:"channels"`
}

// probeGroups runs the model once on [bos] and groups consecutive hook calls that receive
// the very same buffer (same first element address and length): those layers share an
// input. The model package documents that q/k/v and gate/up do; probing keeps this code
// right for any model whose hooks follow the same rule.
func probeGroups(m *model.Model, bos int) ([]Group, error) {
	var groups []Group
	var last *float32
	lastLen := -1
	_, err := m.Forward([][]int{{bos}}, func(name string, x []float32, M, K int) {
		p := &x[0]
		if p == last && len(x) == lastLen && len(groups) > 0 {
			g := &groups[len(groups)-1]
			g.Members = append(g.Members, name)
			return
		}
		groups = append(groups, Group{Name: name, Members: []string{name}, Channels: K})
		last, lastLen = p, len(x)
	})
	if err != nil {
		return nil, fmt.Errorf("calibrun: probe forward: %w", err)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("calibrun: the model has no linear layers to calibrate")
	}
	return groups, nil
}

// worker runs forward passes on its own engine and accumulates one histogram per group
// for the current round. Workers never share histograms; the runner merges them exactly.
type worker struct {
	m      *model.Model
	engine calib.Engine
	groups []Group
	index  map[string]int // linear name -> group index
	hists  []*calib.Histogram
	err    error
	runner model.Runner // set: forward passes and binning on the device
}

func newWorker(m *model.Model, engine calib.Engine, groups []Group) *worker {
	w := &worker{m: m, engine: engine, groups: groups, index: map[string]int{}}
	for gi, g := range groups {
		for _, n := range g.Members {
			w.index[n] = gi
		}
	}
	w.reset()
	return w
}

// reset starts a new round with empty histograms (per-channel absmax on).
func (w *worker) reset() {
	w.hists = make([]*calib.Histogram, len(w.groups))
	for i, g := range w.groups {
		h := calib.NewHistogram(g.Name)
		h.ChannelAbsMax = make([]float32, g.Channels)
		w.hists[i] = h
	}
}

// run does one forward pass over a batch of windows. The first member of a group is
// binned; the others must see the same buffer (checked, so a model that stopped sharing
// inputs fails loudly instead of being calibrated wrongly).
func (w *worker) run(batch [][]int) error {
	if w.runner != nil {
		// On the device: each group's histogram under its first member's name (the
		// other members read the same input and are skipped, as on the CPU).
		hs := make(map[string]*calib.Histogram, len(w.groups))
		for gi, g := range w.groups {
			hs[g.Name] = w.hists[gi]
		}
		_, err := w.runner.ForwardHistograms(batch, hs)
		return err
	}
	var groupPtr *float32
	var hookErr error
	_, err := w.m.Forward(batch, func(name string, x []float32, M, K int) {
		if hookErr != nil {
			return
		}
		gi, ok := w.index[name]
		if !ok {
			hookErr = fmt.Errorf("linear layer %q did not appear in the probe pass", name)
			return
		}
		g := w.groups[gi]
		if name != g.Name {
			if &x[0] != groupPtr {
				hookErr = fmt.Errorf("linear layer %q was expected to read the input of %q but got another buffer", name, g.Name)
			}
			return
		}
		groupPtr = &x[0]
		if K != g.Channels {
			hookErr = fmt.Errorf("linear layer %q: input has %d channels, probe saw %d", name, K, g.Channels)
			return
		}
		t := tensor.FromF32(x[:M*K], M, K)
		if err := w.engine.HistogramAdd([]*calib.Histogram{w.hists[gi]}, []*tensor.Tensor{t}); err != nil {
			hookErr = fmt.Errorf("histogram of %q: %w", name, err)
		}
	})
	if err != nil {
		return err
	}
	return hookErr
}
