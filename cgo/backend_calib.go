//go:build cuda

package cgo

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/tensor"
)

// histBudget bounds the device memory one histogram launch uploads (tensors of a call are
// split into launches of at most this many bytes; a larger tensor goes alone).
const histBudget = 2 << 30

func align256(n int) int { return (n + 255) &^ 255 }

// HistogramAdd bins every tensor on the GPU (a fresh histogram per tensor, many tensors per
// launch) and merges each into its histogram with calib.Histogram.Merge, which is exact:
// the result equals calib's AddF32/AddF16/AddBF16. Histograms with a non-nil
// ChannelAbsMax also get the per-channel absmax (as the CPU backend).
func (b *Backend) HistogramAdd(hs []*calib.Histogram, xs []*tensor.Tensor) error {
	if err := backend.CheckHistogramInputs(hs, xs); err != nil {
		return err
	}
	var idx []int
	for i, x := range xs {
		if x.NumElements() > 0 {
			idx = append(idx, i)
		}
	}
	for len(idx) > 0 {
		n, total := 0, 0
		for n < len(idx) && n < 65535 {
			sz := align256(len(xs[idx[n]].Data))
			if n > 0 && total+sz > histBudget {
				break
			}
			total += sz
			n++
		}
		if err := b.histogramChunk(hs, xs, idx[:n], total); err != nil {
			return err
		}
		idx = idx[n:]
	}
	return nil
}

func (b *Backend) histogramChunk(hs []*calib.Histogram, xs []*tensor.Tensor, idx []int, total int) error {
	buf, err := Alloc(b.dev, total)
	if err != nil {
		return fmt.Errorf("histogram add (%d tensors, first %q): %w", len(idx), hs[idx[0]].Name, err)
	}
	defer buf.Close()
	ins := make([]HistInput, len(idx))
	off := 0
	for k, i := range idx {
		x := xs[i]
		if err := buf.CopyFromHost(off, x.Data); err != nil {
			return fmt.Errorf("histogram add %q: %w", hs[i].Name, err)
		}
		ins[k] = HistInput{Buf: buf, Off: off, N: x.NumElements(), DType: x.DType}
		off += align256(len(x.Data))
	}
	batch, err := NewHistBatch(b.dev, ins)
	if err != nil {
		return fmt.Errorf("histogram add: %w", err)
	}
	defer batch.Close()
	if err := batch.Launch(); err != nil {
		return fmt.Errorf("histogram add (%d tensors): %w", len(idx), err)
	}
	stats, counts, err := batch.Results()
	if err != nil {
		return fmt.Errorf("histogram add (%d tensors): %w", len(idx), err)
	}
	for k, i := range idx {
		h := hs[i]
		if err := h.Merge(stats[k].Histogram(h.Name, &counts[k])); err != nil {
			return fmt.Errorf("histogram add: %w", err)
		}
		if h.ChannelAbsMax != nil {
			if err := b.channelAbsMax(h, xs[i], ins[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// channelAbsMax folds the per-channel absmax of x (already on the device) into h, as
// calib.Histogram.AddChannelAbsMax does (finite values only, max by magnitude bits).
func (b *Backend) channelAbsMax(h *calib.Histogram, x *tensor.Tensor, in HistInput) error {
	cols := x.Cols()
	view, err := in.Buf.View(in.Off, len(x.Data))
	if err != nil {
		return err
	}
	am, err := ChannelAbsMax(Matrix{Buf: view, DType: x.DType, Rows: x.NumElements() / cols, Cols: cols})
	if err != nil {
		return fmt.Errorf("channel absmax of %q: %w", h.Name, err)
	}
	MergeChannelAbsMax(h, am)
	return nil
}

// thresholdOptions is calib's option normalisation; ok is false for options the CPU must
// reject (its error is then the reference's) and for the max calibrator (nothing to search),
// which go to the CPU.
func thresholdOptions(opt calib.Options) (calib.Options, bool) {
	o, err := opt.Normalized()
	return o, err == nil && o.Method != calib.MethodMax
}

func (b *Backend) plan(groups int) *entropyPlan {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.plans[groups]
	if !ok {
		p = newEntropyPlan(groups)
		b.plans[groups] = p
	}
	return p
}

// thresholdLaunch uploads the counts of hs and prepares one search over them under the
// normalised options o; the caller closes both.
func (b *Backend) thresholdLaunch(hs []*calib.Histogram, o calib.Options) (*ThresholdLaunch, *Buffer, error) {
	n := len(hs)
	counts := make([]uint64, 0, n*calib.NumBins)
	var need []uint64
	for _, h := range hs {
		counts = append(counts, h.Counts[:]...)
		if o.Method == calib.MethodPercentile {
			need = append(need, calib.PercentileTarget(o.Percentile, h.Count))
		}
	}
	cb, err := b.upload(u64Bytes(counts))
	if err != nil {
		return nil, nil, err
	}
	var plan *entropyPlan
	if o.Method == calib.MethodEntropy {
		plan = b.plan(o.Levels + 1)
	}
	tl, err := NewThresholdLaunch(b.dev, cb, n, o.Method, o.Levels, o.ZeroSpike, need, plan)
	if err != nil {
		cb.Close()
		return nil, nil, err
	}
	return tl, cb, nil
}

// Thresholds runs the percentile, MSE and entropy searches for all histograms in one
// launch (one block per histogram); max and invalid options go to the CPU.
func (b *Backend) Thresholds(hs []*calib.Histogram, opt calib.Options) ([]calib.Result, error) {
	o, ok := thresholdOptions(opt)
	for _, h := range hs {
		if h == nil {
			ok = false
		}
	}
	if !ok {
		return b.cpu.Thresholds(hs, opt)
	}
	out := make([]calib.Result, len(hs))
	var idx []int
	var live []*calib.Histogram
	for i, h := range hs {
		if !h.HasExp || h.AbsMax == 0 {
			out[i] = calib.Result{Empty: true}
		} else {
			idx = append(idx, i)
			live = append(live, h)
		}
	}
	if len(idx) == 0 {
		return out, nil
	}
	n := len(idx)
	tl, cb, err := b.thresholdLaunch(live, o)
	if err != nil {
		return nil, fmt.Errorf("thresholds (%d histograms): %w", n, err)
	}
	defer cb.Close()
	defer tl.Close()
	if err := tl.Launch(); err != nil {
		return nil, fmt.Errorf("thresholds (%v, %d histograms): %w", o.Method, n, err)
	}
	bins, obj, empty, err := tl.Results()
	if err != nil {
		return nil, fmt.Errorf("thresholds (%v, %d histograms): %w", o.Method, n, err)
	}
	for k, i := range idx {
		h := hs[i]
		bin := int(bins[k])
		switch o.Method {
		case calib.MethodPercentile:
			out[i] = calib.Result{Amax: calib.BinEdge(bin, h.Exp), Bin: bin}
		case calib.MethodMSE:
			out[i] = calib.Result{Amax: calib.BinEdge(bin, h.Exp), Bin: bin, KL: math.Ldexp(obj[k], 2*h.Exp) / float64(h.Count)}
		default:
			if empty[k] != 0 {
				out[i] = calib.Result{Empty: true}
			} else {
				out[i] = calib.Result{Amax: calib.BinEdge(bin, h.Exp), Bin: bin, KL: obj[k]}
			}
		}
	}
	return out, nil
}
