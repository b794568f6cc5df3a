package calibrun

import (
	"github.com/autoq/autoq/calib"
)

// State returns the run's histograms as a calib state (what `autoq calib merge` reads):
// one tensor per linear layer, named by the layer (export and eval look thresholds up by
// that name), shape [channels] (one token's input row; the number of rows varies with the
// data), Batches = the windows of this shard, so that merged shards record the same
// batch count as one unsharded run whatever --batch was, and the shard record
// (ShardRecord).
func (r *Result) State(source string) *calib.State {
	st := r.histState(source)
	st.Shard = r.ShardRecord()
	return st
}

// histState is State without the shard record (no fingerprinting).
func (r *Result) histState(source string) *calib.State {
	st := &calib.State{Batches: r.Windows, Tensors: []calib.TensorState{}}
	for _, h := range r.Histograms() {
		st.Tensors = append(st.Tensors, calib.NewTensorState(h.Name, []int{len(h.ChannelAbsMax)}, source, h))
	}
	return st
}

// Session returns a calib.Session holding the run's histograms (merged from State), so
// the table is computed exactly as `autoq calib merge` computes it from shard files.
func (r *Result) Session(engine calib.Engine, source string) (*calib.Session, error) {
	s := calib.NewSession(calib.SessionOptions{Engine: engine})
	if err := s.MergeState(r.histState(source), source); err != nil {
		return nil, err
	}
	return s, nil
}
