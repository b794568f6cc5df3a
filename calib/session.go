package calib

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// NamedTensor is one activation tensor handed to a Session.
type NamedTensor struct {
	Name string
	T    *tensor.Tensor
}

// Engine is the part of backend.Backend a Session uses (package backend imports calib, so
// calib names the methods it needs instead). A CUDA backend builds the same histograms bit
// for bit and picks the same thresholds.
type Engine interface {
	HistogramAdd(hs []*Histogram, xs []*tensor.Tensor) error
	Thresholds(hs []*Histogram, opt Options) ([]Result, error)
}

// SessionOptions configures a Session.
type SessionOptions struct {
	// Engine computes histograms and thresholds; nil means this package's CPU reference.
	Engine Engine
	// ChannelAbsMax also accumulates the per-channel (last dimension) absmax.
	ChannelAbsMax bool
	// FailOnNonFinite makes a NaN or Inf in any tensor an error (it is counted otherwise).
	FailOnNonFinite bool
}

// Session accumulates one histogram per tensor name from a stream of batches: activation
// dumps (AddFile) or tensors from a forward pass (Add). Memory is one histogram per name,
// independent of the number of batches.
type Session struct {
	opt     SessionOptions
	tensors map[string]*tensorState
	batches int
}

type tensorState struct {
	hist   *Histogram
	shape  []int
	source string // where the shape was first seen (file, or state file for merged shards)
}

// NewSession returns an empty session.
func NewSession(opt SessionOptions) *Session {
	return &Session{opt: opt, tensors: map[string]*tensorState{}}
}

// Batches is the number of batches added (including those of merged states).
func (s *Session) Batches() int { return s.batches }

// AddTensor adds t's values (F32, F16 or BF16) to h: the CPU reference of
// backend.HistogramAdd.
func AddTensor(h *Histogram, t *tensor.Tensor) error {
	switch t.DType {
	case tensor.F32:
		h.AddF32(t.F32())
	case tensor.F16:
		h.AddF16(t.U16())
	case tensor.BF16:
		h.AddBF16(t.U16())
	default:
		return fmt.Errorf("calib: tensor %q is %s; activations must be F32, F16 or BF16", h.Name, t.DType)
	}
	return nil
}

// Add adds one batch: each tensor to the histogram of its name. source names the batch in
// errors (a file path, "layer 3 forward"). Names, dtypes and shapes are validated before
// anything is added, so such errors leave the session unchanged; an engine failure or a
// FailOnNonFinite error comes after the batch was added (the caller stops anyway).
func (s *Session) Add(source string, batch []NamedTensor) error {
	seen := map[string]bool{}
	for _, nt := range batch {
		switch {
		case seen[nt.Name]:
			return fmt.Errorf("%s: tensor %q appears twice in one batch", source, nt.Name)
		case nt.T == nil:
			return fmt.Errorf("%s: tensor %q is nil", source, nt.Name)
		case nt.T.DType != tensor.F32 && nt.T.DType != tensor.F16 && nt.T.DType != tensor.BF16:
			return fmt.Errorf("%s: tensor %q is %s; activations must be F32, F16 or BF16", source, nt.Name, nt.T.DType)
		case nt.T.NumElements() == 0:
			return fmt.Errorf("%s: tensor %q has no elements (shape %v)", source, nt.Name, nt.T.Shape)
		}
		seen[nt.Name] = true
		if st, ok := s.tensors[nt.Name]; ok && !slices.Equal(st.shape, nt.T.Shape) {
			return fmt.Errorf("tensor %q has shape %v in %s but %v in %s", nt.Name, st.shape, st.source, nt.T.Shape, source)
		}
	}
	hs := make([]*Histogram, len(batch))
	xs := make([]*tensor.Tensor, len(batch))
	before := make([][2]uint64, len(batch))
	for i, nt := range batch {
		st, ok := s.tensors[nt.Name]
		if !ok {
			st = &tensorState{hist: NewHistogram(nt.Name), shape: append([]int(nil), nt.T.Shape...), source: source}
			s.tensors[nt.Name] = st
		}
		hs[i], xs[i] = st.hist, nt.T
		before[i] = [2]uint64{st.hist.NaN, st.hist.Inf}
	}
	if s.opt.ChannelAbsMax {
		// A non-nil ChannelAbsMax asks HistogramAdd to fold in the per-channel absmax
		// (zeros are the identity).
		for i, x := range xs {
			if hs[i].ChannelAbsMax == nil {
				hs[i].ChannelAbsMax = make([]float32, x.Cols())
			}
		}
	}
	if s.opt.Engine != nil {
		if err := s.opt.Engine.HistogramAdd(hs, xs); err != nil {
			return fmt.Errorf("%s: histogram: %w", source, err)
		}
	} else {
		for i, x := range xs {
			if err := AddTensor(hs[i], x); err != nil {
				return fmt.Errorf("%s: %w", source, err)
			}
			if hs[i].ChannelAbsMax != nil {
				hs[i].AddChannelAbsMax(x.ToF32(), x.Cols())
			}
		}
	}
	s.batches++
	if s.opt.FailOnNonFinite {
		for i, h := range hs {
			if nan, inf := h.NaN-before[i][0], h.Inf-before[i][1]; nan+inf > 0 {
				return fmt.Errorf("%s: tensor %q holds %d NaN and %d Inf values", source, h.Name, nan, inf)
			}
		}
	}
	return nil
}

// AddFile adds every tensor of one safetensors activation dump as one batch. The file is
// read (memory-mapped) and closed before returning.
func (s *Session) AddFile(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not a readable safetensors file: %w", path, err)
	}
	defer f.Close()
	names := f.Names()
	if len(names) == 0 {
		return fmt.Errorf("%s: the dump holds no tensors", path)
	}
	sort.Strings(names)
	batch := make([]NamedTensor, len(names))
	for i, n := range names {
		t, err := f.Tensor(n)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		batch[i] = NamedTensor{Name: n, T: t}
	}
	return s.Add(path, batch)
}

// Histograms returns the session's histograms sorted by name (shared, not copies).
func (s *Session) Histograms() []*Histogram {
	out := make([]*Histogram, 0, len(s.tensors))
	for _, n := range s.names() {
		out = append(out, s.tensors[n].hist)
	}
	return out
}

func (s *Session) names() []string {
	return slices.Sorted(maps.Keys(s.tensors))
}

// NonFinite lists the tensors that had NaN or Inf values, sorted by name.
func (s *Session) NonFinite() []*Histogram {
	var out []*Histogram
	for _, h := range s.Histograms() {
		if h.NaN+h.Inf > 0 {
			out = append(out, h)
		}
	}
	return out
}

// Table runs the calibrator on every histogram (through the engine when there is one).
func (s *Session) Table(opt Options) (*Table, error) {
	hs := s.Histograms()
	var res []Result
	var err error
	if s.opt.Engine != nil {
		res, err = s.opt.Engine.Thresholds(hs, opt)
	} else {
		res, err = ComputeAll(hs, opt)
	}
	if err != nil {
		return nil, err
	}
	if len(res) != len(hs) {
		return nil, fmt.Errorf("calib: engine returned %d thresholds for %d histograms", len(res), len(hs))
	}
	return NewTable(hs, res, opt, s.batches)
}
