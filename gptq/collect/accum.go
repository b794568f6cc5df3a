package collect

import (
	"fmt"
	"hash/maphash"
	"math"
	"unsafe"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
)

// Accumulator gathers the input Hessians of some linear layers from the hooks of any pass
// over the model (Forward, or RunBlocks one block at a time): the statistics Hessians
// collects, for a caller that drives the passes itself. Layers reading one input (q/k/v,
// gate/up) share a single accumulation, found as Hessians finds it (consecutive hook calls
// with the same values), so batches added in the same order give Hessians' bits. Only a
// digest of the previous input is kept, not a copy (a batch's widest input is tens of MB).
type Accumulator struct {
	want     map[string]bool
	hs       map[string]*gptq.Hessian
	alias    map[string]string // layer -> layer whose Hessian it shares
	lastName string
	last     inputDigest // of the previous hook call's input (zero: none this batch)
	err      error
	pending  []func() error // sums still to be fetched (a device's), run by Hessians
}

// NewAccumulator accumulates the layers in names (nil: every layer the hook sees).
func NewAccumulator(names []string) *Accumulator {
	a := &Accumulator{hs: map[string]*gptq.Hessian{}, alias: map[string]string{}}
	if names != nil {
		a.want = map[string]bool{}
		for _, n := range names {
			a.want[n] = true
		}
	}
	return a
}

// Hook returns the model hook that feeds the accumulator. Call EndBatch between passes.
func (a *Accumulator) Hook() model.Hook {
	return func(name string, x []float32, M, K int) {
		if a.err != nil || len(x) == 0 || a.want != nil && !a.want[name] {
			return
		}
		d := digestOf(x)
		if d == a.last {
			if o, ok := a.alias[name]; ok && o != a.lastName {
				a.err = fmt.Errorf("collect: %s shared the input of %s, now of %s", name, o, a.lastName)
			}
			a.alias[name] = a.lastName
			return
		}
		a.lastName, a.last = name, d
		h := a.hs[name]
		if h == nil {
			var err error
			if h, err = gptq.NewHessian(K); err != nil {
				a.err = fmt.Errorf("collect: %s: %w", name, err)
				return
			}
			a.hs[name] = h
		}
		if err := h.Add(x, M, K); err != nil {
			a.err = fmt.Errorf("collect: %s: %w", name, err)
		}
	}
}

// Wants reports whether the accumulator collects layer name.
func (a *Accumulator) Wants(name string) bool { return a.want == nil || a.want[name] }

// AddGram adds an input's Gram matrix summed elsewhere (on a device: model.GramBlockRunner)
// for the layers in names, which read that one input: sum is the [k, k] upper triangle of
// X^T X over tokens rows. A non-finite entry is an error naming the layer.
func (a *Accumulator) AddGram(names []string, k int, tokens int64, sum []float64) error {
	var keep []string
	for _, n := range names {
		if a.Wants(n) {
			keep = append(keep, n)
		}
	}
	if len(keep) == 0 || a.err != nil {
		return a.err
	}
	if len(sum) != k*k {
		return fmt.Errorf("collect: %s: Gram matrix of %d entries for width %d", keep[0], len(sum), k)
	}
	for i, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("collect: %s: non-finite input statistics (entry %d, %d of its Gram matrix)", keep[0], i/k, i%k)
		}
	}
	owner := keep[0]
	if o, ok := a.alias[owner]; ok {
		owner = o
	}
	h := a.hs[owner]
	if h == nil {
		var err error
		if h, err = gptq.NewHessian(k); err != nil {
			return fmt.Errorf("collect: %s: %w", owner, err)
		}
		a.hs[owner] = h
	}
	if err := h.Merge(&gptq.Hessian{K: k, Tokens: tokens, Sum: sum}); err != nil {
		return fmt.Errorf("collect: %s: %w", owner, err)
	}
	for _, n := range keep {
		if n == owner {
			continue
		}
		if o, ok := a.alias[n]; ok && o != owner {
			return fmt.Errorf("collect: %s shared the input of %s, now of %s", n, o, owner)
		}
		a.alias[n] = owner
	}
	return nil
}

// Defer registers f to run once before Hessians returns: it adds the sums a device still
// holds (AddGram).
func (a *Accumulator) Defer(f func() error) { a.pending = append(a.pending, f) }

// EndBatch ends one pass: inputs are compared for sharing within a pass only.
func (a *Accumulator) EndBatch() {
	a.lastName, a.last = "", inputDigest{}
}

// Err is the first error a hook call met.
func (a *Accumulator) Err() error { return a.err }

// Hessians returns one Hessian per wanted layer; layers sharing an input share one
// *gptq.Hessian (read-only to GPTQ, which copies it). A wanted layer that saw no input is an
// error.
func (a *Accumulator) Hessians() (map[string]*gptq.Hessian, error) {
	pending := a.pending
	a.pending = nil
	for _, f := range pending {
		if err := f(); err != nil && a.err == nil {
			a.err = err
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	out := make(map[string]*gptq.Hessian, len(a.hs)+len(a.alias))
	for n, h := range a.hs {
		out[n] = h
	}
	for name, owner := range a.alias {
		src := a.hs[owner]
		if src == nil {
			return nil, fmt.Errorf("collect: %s shares the input of %s, which has no statistics", name, owner)
		}
		out[name] = src
	}
	for n := range a.want {
		if out[n] == nil {
			return nil, fmt.Errorf("collect: linear layer %s saw no input during calibration", n)
		}
	}
	return out, nil
}

// Bytes is the memory the accumulated sums hold.
func (a *Accumulator) Bytes() int64 {
	var n int64
	for _, h := range a.hs {
		n += 8 * int64(len(h.Sum))
	}
	return n
}

// inputDigest identifies a hook input by its length and two independent 64-bit hashes of
// its bits: equal inputs have equal digests, and two different inputs of one pass share
// one with a probability of about 2^-128.
type inputDigest struct {
	n    int
	h, g uint64
}

var digestSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func digestOf(x []float32) inputDigest {
	if len(x) == 0 {
		return inputDigest{}
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
	return inputDigest{n: len(x), h: maphash.Bytes(digestSeeds[0], b), g: maphash.Bytes(digestSeeds[1], b)}
}
