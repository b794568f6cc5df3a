//go:build cuda

package cgo

// The runner's device-side observers (histograms of every linear input) and its timing.

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/tensor"
)

// ForwardHistograms runs the prefill and adds every linear input to hs[name] on the device
// (the batched histogram kernel on the activation buffer itself, merged exactly into hs;
// per-channel absmax too when hs[name].ChannelAbsMax is non-nil).
func (r *ModelRunner) ForwardHistograms(tokens [][]int, hs map[string]*calib.Histogram) ([][]float32, error) {
	obs := func(names []string, x *Buffer, M, K int) error {
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
		hb, err := NewHistBatch(r.dev, []HistInput{{Buf: x, Off: 0, N: M * K, DType: tensor.F16}})
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
			bs, err := r.scratch(4*K, 8)
			if err != nil {
				return err
			}
			defer closeAll(bs)
			if err := ChannelAbsMaxDev(Matrix{Buf: x, DType: tensor.F16, Rows: M, Cols: K}, bs[0], bs[1]); err != nil {
				return fmt.Errorf("channel absmax of the input of %s: %w", names[0], err)
			}
			if am, err = download[float32](bs[0], K); err != nil {
				return err
			}
		}
		for _, h := range want {
			if err := h.Merge(batchHistogram(h.Name, st[0], &counts[0])); err != nil {
				return fmt.Errorf("cuda model: %w", err)
			}
			if h.ChannelAbsMax != nil {
				for c, v := range am {
					if math.Float32bits(v) > math.Float32bits(h.ChannelAbsMax[c]) {
						h.ChannelAbsMax[c] = v
					}
				}
			}
		}
		return nil
	}
	return r.run(tokens, obs)
}

// scratch allocates zeroed temporary buffers (freed by the caller with closeAll).
func (r *ModelRunner) scratch(sizes ...int) ([]*Buffer, error) {
	var bs []*Buffer
	for _, n := range sizes {
		b, err := Alloc(r.dev, n)
		if err == nil {
			err = b.Memset(0, n, 0)
		}
		if err != nil {
			closeAll(bs)
			b.Close()
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, nil
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
	if err := Synchronize(r.dev); err != nil {
		return nil, err
	}
	start, err := NewEvent(r.dev)
	if err != nil {
		return nil, err
	}
	defer start.Close()
	end, err := NewEvent(r.dev)
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
		if ms[i], err = ElapsedMs(start, end); err != nil {
			return nil, err
		}
	}
	return ms, nil
}
