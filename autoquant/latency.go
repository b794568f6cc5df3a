package autoquant

import (
	"time"

	"github.com/autoq/autoq/bench"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// KernelModel plugs the integer reference kernels (model.QuantLinear) into m for the
// layers that have one: 4-bit weights (W4A16) and 8-bit symmetric per-channel weights with
// dynamic per-token activations (W8A8). The other quantized layers keep their fake-quantized
// float layer. It returns how many layers run on integer kernels. The kernels use the
// layers' own QTensors, so the outputs are those of the export (up to float summation order).
func KernelModel(m *model.Model, layers []*Layer) (int, error) {
	n := 0
	for _, l := range layers {
		if l.Q == nil { // a llama.cpp block format: its dense decoded weights
			continue
		}
		s := l.Q.Scheme
		w8a8 := s.Bits == 8 && s.Symmetric && s.Granularity == quant.PerChannel && l.Act != nil && l.Act.Dynamic
		if s.Bits != 4 && !w8a8 {
			continue
		}
		var bias []float32
		if b := m.Weight(l.Name + ".bias"); b != nil {
			bias = b.F32()
		}
		if err := m.SetLinear(l.Name, &model.QuantLinear{Q: l.Q, Bias: bias, N: l.Q.Rows, K: l.Q.Cols, W8A8: w8a8}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Timing is a set of timed runs in milliseconds: median and range.
type Timing struct {
	Median float64 `json:"median_ms"`
	Min    float64 `json:"min_ms"`
	Max    float64 `json:"max_ms"`
}

func timingOf(ts []float64) Timing {
	t := Timing{Median: bench.Median(ts), Min: ts[0], Max: ts[0]}
	for _, v := range ts {
		t.Min, t.Max = min(t.Min, v), max(t.Max, v)
	}
	return t
}

// Distinct reports whether two timings differ by more than their run-to-run spread (their
// ranges do not overlap): only then is a speedup a result rather than noise.
func (t Timing) Distinct(o Timing) bool { return t.Max < o.Min || o.Max < t.Min }

// MedianForwardMs times runs prefills of toks (after warmup untimed ones) and returns the
// median in milliseconds.
func MedianForwardMs(m *model.Model, toks [][]int, warmup, runs int) (float64, error) {
	t, err := TimeForward(m, toks, warmup, runs)
	return t.Median, err
}

// TimeForward times runs prefills of toks after warmup untimed ones.
func TimeForward(m *model.Model, toks [][]int, warmup, runs int) (Timing, error) {
	for range warmup {
		if _, err := m.Forward(toks, nil); err != nil {
			return Timing{}, err
		}
	}
	ts := make([]float64, max(runs, 1))
	for i := range ts {
		t0 := time.Now()
		if _, err := m.Forward(toks, nil); err != nil {
			return Timing{}, err
		}
		ts[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	return timingOf(ts), nil
}
