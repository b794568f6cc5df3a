//go:build cuda

package cgo

// #include "autoq.h"
// /* cuda/histogram_v2.cu */
// int64_t autoq_histogram_v2_scratch_bytes(int dev, int ntensors, int64_t max_n);
// int autoq_histogram_v2(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
//                        autoq_hist_stats *stats, uint64_t *counts, void *scratch, int64_t scratch_bytes,
//                        void *stream);
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
	// twoByte: every input is F16 or BF16 (histogram variant 2 applies).
	twoByte bool
	// scratch holds variant 2's per-block pattern histograms, allocated at its first
	// launch; v2Unsupported records a device without the shared memory it needs.
	scratch       *Buffer
	v2Unsupported bool
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
	b := &HistBatch{dev: dev, n: len(ins), maxN: maxN, twoByte: twoByte}
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

// Launch runs the histogram passes (asynchronously, on the default stream): variant 2's
// single pass when selected (HistogramVariant) and the batch is all F16/BF16, else the three
// passes of variant 1.
func (b *HistBatch) Launch() error {
	if histogramVariant.Load() == 2 && b.twoByte && !b.v2Unsupported {
		if b.scratch == nil {
			var need int64
			if err := call(func() C.int {
				need = int64(C.autoq_histogram_v2_scratch_bytes(C.int(b.dev), C.int(b.n), C.int64_t(b.maxN)))
				return C.int(min(need, 0))
			}); err != nil {
				return fmt.Errorf("histogram v2: %w", err)
			}
			if need == 0 {
				b.v2Unsupported = true
				return b.Launch()
			}
			var err error
			if b.scratch, err = Alloc(b.dev, int(need)); err != nil {
				return fmt.Errorf("histogram scratch: %w", err)
			}
		}
		return call(func() C.int {
			return C.autoq_histogram_v2(C.int(b.dev), (*C.autoq_hist_input)(b.desc.ptr), C.int(b.n), C.int64_t(b.maxN),
				(*C.autoq_hist_stats)(b.stats.ptr), (*C.uint64_t)(b.counts.ptr), b.scratch.ptr, C.int64_t(b.scratch.size), nil)
		})
	}
	return call(func() C.int {
		return C.autoq_histogram(C.int(b.dev), (*C.autoq_hist_input)(b.desc.ptr), C.int(b.n), C.int64_t(b.maxN),
			(*C.autoq_hist_stats)(b.stats.ptr), (*C.uint64_t)(b.counts.ptr), nil)
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

// batchHistogram is the fresh calib.Histogram of one tensor from a launch's results.
func batchHistogram(name string, st HistStats, counts *[calib.NumBins]uint64) *calib.Histogram {
	h := calib.NewHistogram(name)
	h.Counts = *counts
	h.Exp, h.HasExp = st.Exp, st.HasExp
	h.AbsMax = st.AbsMax
	h.Count, h.NaN, h.Inf = st.Count, st.NaN, st.Inf
	return h
}
