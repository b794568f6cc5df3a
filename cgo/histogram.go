//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/tensor"
)

// HistInput is one tensor (N values of DType at byte offset Off of Buf) for a batched
// histogram launch. Offsets that are multiples of 16 let the kernel use vector loads.
type HistInput struct {
	Buf   *Buffer
	Off   int
	N     int
	DType tensor.DType
}

// HistStats is what the first pass learns about one tensor.
type HistStats struct {
	AbsMax          float32 // largest finite |x|
	Exp             int     // calib.ExpFor(AbsMax), valid when HasExp
	HasExp          bool    // AbsMax > 0
	NaN, Inf, Count uint64  // Count: finite values binned
}

const histStatsSize = int(unsafe.Sizeof(C.autoq_hist_stats{}))
const histInputSize = int(unsafe.Sizeof(C.autoq_hist_input{}))

// HistBatch holds the device-side descriptors and outputs of a batched histogram launch,
// reusable across launches (the benchmark times Launch alone).
type HistBatch struct {
	dev    int
	n      int
	maxN   int
	desc   *Buffer
	stats  *Buffer
	counts *Buffer
	// twoByte: every input is F16 or BF16 (the one-pass kernel takes them).
	twoByte bool
	// scratch holds the one-pass kernel's per-block pattern histograms, sized at its first
	// launch (scratchNeed: -1 before the query, 0 on a device without the shared memory).
	scratch     *Buffer
	scratchNeed int64
}

// NewHistBatch uploads the descriptors of ins and allocates the outputs.
func NewHistBatch(dev int, ins []HistInput) (*HistBatch, error) {
	if len(ins) == 0 || len(ins) > 65535 {
		return nil, fmt.Errorf("cuda: histogram batch of %d tensors (want 1..65535)", len(ins))
	}
	descs := make([]C.autoq_hist_input, len(ins))
	maxN := 0
	twoByte := true
	for i, in := range ins {
		if !in.DType.IsFloat() {
			return nil, fmt.Errorf("cuda: histogram input %d: dtype %s is not F32, F16 or BF16", i, in.DType)
		}
		if err := in.Buf.span("histogram input", in.Off, in.N*in.DType.Bits()/8); err != nil {
			return nil, err
		}
		descs[i] = C.autoq_hist_input{data: in.Buf.At(in.Off), n: C.int64_t(in.N), dtype: C.int32_t(in.DType)}
		maxN = max(maxN, in.N)
		twoByte = twoByte && in.DType.Bits() == 16
	}
	b := &HistBatch{dev: dev, n: len(ins), maxN: maxN, twoByte: twoByte, scratchNeed: -1}
	var err error
	if b.desc, err = Alloc(dev, len(ins)*histInputSize); err != nil {
		return nil, err
	}
	if b.stats, err = Alloc(dev, len(ins)*histStatsSize); err != nil {
		b.Close()
		return nil, err
	}
	if b.counts, err = Alloc(dev, len(ins)*calib.NumBins*8); err != nil {
		b.Close()
		return nil, err
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&descs[0])), len(ins)*histInputSize)
	if err := b.desc.CopyFromHost(0, raw); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Launch runs the histogram (asynchronously, on the default stream) with the first kernel
// of the dispatch table (OpHistogram) that fits: one pass when every input is F16/BF16 and
// the device has the shared memory, else two.
func (b *HistBatch) Launch() error {
	k, err := firstFit(OpHistogram, 0, b.fits)
	if err != nil {
		return err
	}
	return b.LaunchWith(k)
}

// fits reports whether kernel k can run this batch (querying the one-pass scratch once).
func (b *HistBatch) fits(k Kernel) bool {
	switch k {
	case HistogramTwoPass:
		return true
	case HistogramOnePass, HistogramOnePassWarpAgg:
		if !b.twoByte {
			return false
		}
		if b.scratchNeed < 0 {
			var need int64
			if err := call(func() C.int {
				need = int64(C.autoq_histogram_onepass_scratch_bytes(C.int(b.dev), C.int(b.n), C.int64_t(b.maxN)))
				return C.int(min(need, 0))
			}); err != nil {
				return false
			}
			b.scratchNeed = need
		}
		return b.scratchNeed > 0
	}
	return false
}

// LaunchWith runs histogram kernel k (an error when it cannot take the batch).
func (b *HistBatch) LaunchWith(k Kernel) error {
	if !knownKernel(OpHistogram, k) {
		return fmt.Errorf("cuda: histogram: unknown kernel %q (have %v)", k, Kernels(OpHistogram))
	}
	if !b.fits(k) {
		return fmt.Errorf("cuda: histogram: kernel %s cannot take this batch (F16/BF16 inputs only, 128 KB of shared memory per block)", k)
	}
	if k == HistogramTwoPass {
		return call(func() C.int {
			return C.autoq_histogram_twopass(C.int(b.dev), (*C.autoq_hist_input)(b.desc.ptr), C.int(b.n), C.int64_t(b.maxN),
				(*C.autoq_hist_stats)(b.stats.ptr), (*C.uint64_t)(b.counts.ptr), nil)
		})
	}
	if b.scratch == nil {
		var err error
		if b.scratch, err = Alloc(b.dev, int(b.scratchNeed)); err != nil {
			return fmt.Errorf("histogram scratch: %w", err)
		}
	}
	if k == HistogramOnePassWarpAgg {
		return call(func() C.int {
			return C.autoq_histogram_onepass_warpagg(C.int(b.dev), (*C.autoq_hist_input)(b.desc.ptr), C.int(b.n), C.int64_t(b.maxN),
				(*C.autoq_hist_stats)(b.stats.ptr), (*C.uint64_t)(b.counts.ptr), b.scratch.ptr, C.int64_t(b.scratch.size), nil)
		})
	}
	return call(func() C.int {
		return C.autoq_histogram_onepass(C.int(b.dev), (*C.autoq_hist_input)(b.desc.ptr), C.int(b.n), C.int64_t(b.maxN),
			(*C.autoq_hist_stats)(b.stats.ptr), (*C.uint64_t)(b.counts.ptr), b.scratch.ptr, C.int64_t(b.scratch.size), nil)
	})
}

// Counts returns the device buffer of [tensors, calib.NumBins] uint64 counts.
func (b *HistBatch) Counts() *Buffer { return b.counts }

// Results copies the statistics and counts back.
func (b *HistBatch) Results() ([]HistStats, [][calib.NumBins]uint64, error) {
	raw := make([]C.autoq_hist_stats, b.n)
	if err := b.stats.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&raw[0])), b.n*histStatsSize), 0); err != nil {
		return nil, nil, err
	}
	counts := make([][calib.NumBins]uint64, b.n)
	if err := b.counts.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&counts[0])), b.n*calib.NumBins*8), 0); err != nil {
		return nil, nil, err
	}
	st := make([]HistStats, b.n)
	for i, r := range raw {
		st[i] = HistStats{
			AbsMax: math.Float32frombits(uint32(r.absmax_bits)), Exp: int(r.exp), HasExp: r.has_exp != 0,
			NaN: uint64(r.nan), Inf: uint64(r.inf), Count: uint64(r.count),
		}
	}
	return st, counts, nil
}

// Close frees the batch's device memory (not the inputs).
func (b *HistBatch) Close() error {
	var first error
	for _, x := range []*Buffer{b.desc, b.stats, b.counts, b.scratch} {
		if x != nil {
			if err := x.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Histogram is the fresh calib.Histogram of one tensor of a launch (its stats and counts
// from Results), to merge into a running histogram with calib.Histogram.Merge (exact).
func (st HistStats) Histogram(name string, counts *[calib.NumBins]uint64) *calib.Histogram {
	h := calib.NewHistogram(name)
	h.Counts = *counts
	h.Exp, h.HasExp = st.Exp, st.HasExp
	h.AbsMax = st.AbsMax
	h.Count, h.NaN, h.Inf = st.Count, st.NaN, st.Inf
	return h
}

// ChannelAbsMax returns max |x| over the rows of each column of m (finite values only).
func ChannelAbsMax(m Matrix) ([]float32, error) {
	am, err := Alloc(m.Buf.dev, 4*m.Cols)
	if err != nil {
		return nil, err
	}
	defer am.Close()
	nf, err := Alloc(m.Buf.dev, 8)
	if err != nil {
		return nil, err
	}
	defer nf.Close()
	if err := nf.Memset(0, 8, 0); err != nil {
		return nil, err
	}
	if err := ChannelAbsMaxDev(m, am, nf); err != nil {
		return nil, err
	}
	return download[float32](am, m.Cols)
}

// MergeChannelAbsMax folds a per-channel absmax into h as calib.Histogram.AddChannelAbsMax
// does (the larger magnitude by its bits).
func MergeChannelAbsMax(h *calib.Histogram, am []float32) {
	for c, v := range am {
		if math.Float32bits(v) > math.Float32bits(h.ChannelAbsMax[c]) {
			h.ChannelAbsMax[c] = v
		}
	}
}
