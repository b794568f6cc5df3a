package calib

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/autoq/autoq/internal/atomicfile"
)

// Histogram state files let shards computed anywhere be merged exactly (autoq calib merge).
//
// Layout (version 1): a JSON object {"format", "version", "sha256", "payload"} where payload
// is the compact JSON of State and sha256 the hex SHA-256 of exactly those payload bytes.
// Floats are stored as their bits, counts as sparse [bin, count] pairs. The payload's
// "shard" object (ShardRecord) was added later without a version change: older readers
// ignore it, and this reader treats its absence as a file from before records.
const (
	StateFormat  = "autoq-calib-histograms"
	StateVersion = 1
)

// State is the content of a state file: every tensor's histogram and first-seen shape, and
// which shard of which run it is (Shard: nil in files written before shard records; merge
// refuses those, see ReadShardSet).
type State struct {
	Batches int           `json:"batches"`
	Tensors []TensorState `json:"tensors"`
	Shard   *ShardRecord  `json:"shard,omitempty"`
}

// TensorState is one histogram, stored exactly.
type TensorState struct {
	Name          string      `json:"name"`
	Shape         []int       `json:"shape"`
	Source        string      `json:"source"` // where the shape was first seen
	Exp           int         `json:"exp"`
	HasExp        bool        `json:"has_exp"`
	AbsMaxBits    uint32      `json:"absmax_bits"`
	Count         uint64      `json:"count"`
	NaN           uint64      `json:"nan"`
	Inf           uint64      `json:"inf"`
	Bins          [][2]uint64 `json:"bins"` // [bin, count], count > 0, increasing bin
	ChannelAbsMax []uint32    `json:"channel_absmax_bits,omitempty"`
}

type stateEnvelope struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Payload json.RawMessage `json:"payload"`
}

// State returns the session's histograms as a State.
func (s *Session) State() *State {
	st := &State{Batches: s.batches, Tensors: []TensorState{}}
	for _, n := range s.names() {
		ts := s.tensors[n]
		st.Tensors = append(st.Tensors, NewTensorState(n, ts.shape, ts.source, ts.hist))
	}
	return st
}

// NewTensorState is the stored form of histogram h of the tensor name (shape, source: the
// dump it came from): its non-zero bins and every float as its bits, so that it reloads
// exactly.
func NewTensorState(name string, shape []int, source string, h *Histogram) TensorState {
	e := TensorState{Name: name, Shape: shape, Source: source, Exp: h.Exp, HasExp: h.HasExp,
		AbsMaxBits: math.Float32bits(h.AbsMax), Count: h.Count, NaN: h.NaN, Inf: h.Inf, Bins: [][2]uint64{}}
	for i, c := range h.Counts {
		if c != 0 {
			e.Bins = append(e.Bins, [2]uint64{uint64(i), c})
		}
	}
	for _, x := range h.ChannelAbsMax {
		e.ChannelAbsMax = append(e.ChannelAbsMax, math.Float32bits(x))
	}
	return e
}

// histogram rebuilds and checks one stored histogram against the rules every histogram
// obeys (histogram_types.go): bins in range and summing to Count, Exp = ExpFor(AbsMax) once a
// non-zero value was seen, only zeros before, finite non-negative channel absmaxes.
func (e *TensorState) histogram() (*Histogram, error) {
	h := &Histogram{Name: e.Name, Exp: e.Exp, HasExp: e.HasExp, AbsMax: math.Float32frombits(e.AbsMaxBits), Count: e.Count, NaN: e.NaN, Inf: e.Inf}
	var sum uint64
	last := -1
	for _, b := range e.Bins {
		if b[0] >= NumBins || int(b[0]) <= last || b[1] == 0 {
			return nil, fmt.Errorf("tensor %q: bad bin entry %v", e.Name, b)
		}
		last = int(b[0])
		h.Counts[b[0]] = b[1]
		var carry uint64
		if sum, carry = bits.Add64(sum, b[1], 0); carry != 0 {
			return nil, fmt.Errorf("tensor %q: bin counts overflow 64 bits", e.Name)
		}
	}
	if sum != e.Count {
		return nil, fmt.Errorf("tensor %q: bins hold %d values but count is %d", e.Name, sum, e.Count)
	}
	if e.HasExp && (e.AbsMaxBits == 0 || e.AbsMaxBits >= 0x7f800000 || ExpFor(h.AbsMax) != e.Exp) {
		return nil, fmt.Errorf("tensor %q: absmax %v (bits %08x) does not match exponent %d", e.Name, h.AbsMax, e.AbsMaxBits, e.Exp)
	}
	if !e.HasExp && (e.AbsMaxBits != 0 || last > 0) {
		return nil, fmt.Errorf("tensor %q: values outside bin 0 without an exponent", e.Name)
	}
	for i, b := range e.ChannelAbsMax {
		if b >= 0x7f800000 {
			return nil, fmt.Errorf("tensor %q: channel %d absmax (bits %08x) is negative or not finite", e.Name, i, b)
		}
		h.ChannelAbsMax = append(h.ChannelAbsMax, math.Float32frombits(b))
	}
	return h, nil
}

// addOverflows reports whether merging counts into h would overflow.
func addOverflows(h *Histogram, o *Histogram) bool {
	for _, p := range [][2]uint64{{h.Count, o.Count}, {h.NaN, o.NaN}, {h.Inf, o.Inf}} {
		if _, carry := bits.Add64(p[0], p[1], 0); carry != 0 {
			return true
		}
	}
	return false // bins add to at most Count
}

// MergeState merges a state (read from source, for messages) into the session: exact
// histogram merges, shapes checked against what the session has seen.
func (s *Session) MergeState(st *State, source string) error {
	if st.Batches < 0 || s.batches+st.Batches < s.batches {
		return fmt.Errorf("%s: batch count %d is negative or overflows", source, st.Batches)
	}
	hs := make([]*Histogram, len(st.Tensors))
	names := map[string]bool{}
	for i := range st.Tensors {
		e := &st.Tensors[i]
		if names[e.Name] {
			return fmt.Errorf("%s: tensor %q appears twice", source, e.Name)
		}
		names[e.Name] = true
		h, err := e.histogram()
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		if ts, ok := s.tensors[e.Name]; ok {
			if !slices.Equal(ts.shape, e.Shape) {
				return fmt.Errorf("tensor %q has shape %v in %s but %v in %s (shard %s)", e.Name, ts.shape, ts.source, e.Shape, e.Source, source)
			}
			if a, b := ts.hist.ChannelAbsMax, h.ChannelAbsMax; a != nil && b != nil && len(a) != len(b) {
				return fmt.Errorf("%s: tensor %q: %d channels, earlier %d", source, e.Name, len(b), len(a))
			}
			if addOverflows(ts.hist, h) {
				return fmt.Errorf("%s: tensor %q: merged counts overflow 64 bits", source, e.Name)
			}
		}
		hs[i] = h
	}
	for i, h := range hs {
		e := &st.Tensors[i]
		ts, ok := s.tensors[e.Name]
		if !ok {
			s.tensors[e.Name] = &tensorState{hist: h, shape: append([]int(nil), e.Shape...), source: e.Source}
			continue
		}
		if err := ts.hist.Merge(h); err != nil { // cannot fail: checked above
			return fmt.Errorf("%s: %w", source, err)
		}
	}
	s.batches += st.Batches
	return nil
}

// MarshalState renders a state file.
func MarshalState(st *State) ([]byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	b, err := json.Marshal(stateEnvelope{Format: StateFormat, Version: StateVersion, SHA256: hex.EncodeToString(sum[:]), Payload: payload})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteStateFile writes a state file atomically.
func WriteStateFile(path string, st *State) error {
	b, err := MarshalState(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// ParseState checks and decodes a state file's bytes; name is used in errors.
func ParseState(name string, b []byte) (*State, error) {
	var env stateEnvelope
	if err := stateFile.decode(name, b, &env); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(env.Payload)
	if hex.EncodeToString(sum[:]) != env.SHA256 {
		return nil, fmt.Errorf("%s: checksum mismatch (file corrupt or edited): sha256 %x, recorded %s", name, sum, env.SHA256)
	}
	var st State
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		return nil, fmt.Errorf("%s: bad payload: %w", name, err)
	}
	if st.Shard != nil {
		if err := st.Shard.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return &st, nil
}

// ReadStateFile reads and checks a state file.
func ReadStateFile(path string) (*State, error) { return readFile(path, ParseState) }
