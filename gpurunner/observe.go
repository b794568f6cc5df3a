//go:build cuda

package gpurunner

// The runner's device-side observers (histograms of every linear input) and its timing.

import (
	"fmt"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/tensor"
)

// ForwardHistograms runs the prefill and adds every linear input to hs[name] on the device
// (the batched histogram kernel on the activation buffer itself, merged exactly into hs;
// per-channel absmax too when hs[name].ChannelAbsMax is non-nil).
func (r *ModelRunner) ForwardHistograms(tokens [][]int, hs map[string]*calib.Histogram) ([][]float32, error) {
	obs := func(names []string, x *cgo.Buffer, M, K int) error {
		var want []*calib.Histogram
		channels := false
		for _, n := range names {
			if h := hs[n]; h != nil {
				if h.ChannelAbsMax != nil && len(h.ChannelAbsMax) != K {
					return fmt.Errorf("cuda model: histogram %q tracks %d channels, the input of %s has %d", h.Name, len(h.ChannelAbsMax), n, K)
				}
				want = append(want, h)
				channels = channels || h.ChannelAbsMax != nil
			}
		}
		if len(want) == 0 {
			return nil
		}
		hb, err := cgo.NewHistBatch(r.dev, []cgo.HistInput{{Buf: x, Off: 0, N: M * K, DType: tensor.F16}})
		if err != nil {
			return err
		}
		defer hb.Close()
		if err := hb.Launch(); err != nil {
			return fmt.Errorf("histogram of the input of %s: %w", names[0], err)
		}
		st, counts, err := hb.Results()
		if err != nil {
			return fmt.Errorf("histogram of the input of %s: %w", names[0], err)
		}
		var am []float32
		if channels {
			if am, err = cgo.ChannelAbsMax(cgo.Matrix{Buf: x, DType: tensor.F16, Rows: M, Cols: K}); err != nil {
				return fmt.Errorf("channel absmax of the input of %s: %w", names[0], err)
			}
		}
		for _, h := range want {
			if err := h.Merge(st[0].Histogram(h.Name, &counts[0])); err != nil {
				return fmt.Errorf("cuda model: %w", err)
			}
			if h.ChannelAbsMax != nil {
				cgo.MergeChannelAbsMax(h, am)
			}
		}
		return nil
	}
	return r.run(tokens, obs)
}

// TimePrefill times whole prefills with CUDA events on the default stream (inputs uploaded
// once; logits stay on the device).
func (r *ModelRunner) TimePrefill(tokens [][]int, warmup, runs int) ([]float64, error) {
	if runs < 1 || warmup < 0 {
		return nil, fmt.Errorf("cuda model: time prefill: runs %d must be >= 1, warmup %d >= 0", runs, warmup)
	}
	bt, err := r.prepare(tokens)
	if err != nil {
		return nil, err
	}
	for i := 0; i < warmup; i++ {
		if err := r.compute(bt, nil); err != nil {
			return nil, err
		}
	}
	if err := cgo.Synchronize(r.dev); err != nil {
		return nil, err
	}
	start, err := cgo.NewEvent(r.dev)
	if err != nil {
		return nil, err
	}
	defer start.Close()
	end, err := cgo.NewEvent(r.dev)
	if err != nil {
		return nil, err
	}
	defer end.Close()
	ms := make([]float64, runs)
	for i := range ms {
		if err := start.Record(nil); err != nil {
			return nil, err
		}
		if err := r.compute(bt, nil); err != nil {
			return nil, err
		}
		if err := end.Record(nil); err != nil {
			return nil, err
		}
		if ms[i], err = cgo.ElapsedMs(start, end); err != nil {
			return nil, err
		}
	}
	return ms, nil
}
