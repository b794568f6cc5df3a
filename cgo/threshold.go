//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/autoq/autoq/calib"
)

// entropyPlan is calib's entropy plan (calib.EntropyPlanFor: the same group ranges in the
// same order as the CPU search) with its arrays uploaded to the device.
type entropyPlan struct {
	*calib.EntropyPlan
	dLo, dHi, dIdx, dLast *Buffer // on the device after upload
	uploadOnce            sync.Once
	uploadErr             error
}

func newEntropyPlan(groups int) *entropyPlan {
	return &entropyPlan{EntropyPlan: calib.EntropyPlanFor(groups)}
}

func i32Bytes(v []int32) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// upload copies the plan to device dev (once; the plan then lives as long as the backend).
// The kernel reads the range indices as int32.
func (p *entropyPlan) upload(dev int) error {
	p.uploadOnce.Do(func() {
		up := func(v []int32) *Buffer {
			if p.uploadErr != nil {
				return nil
			}
			b, err := Alloc(dev, 4*len(v))
			if err == nil {
				err = b.CopyFromHost(0, i32Bytes(v))
			}
			if err != nil {
				p.uploadErr = err
			}
			return b
		}
		idx := make([]int32, len(p.Idx))
		for i, x := range p.Idx {
			idx[i] = int32(x)
		}
		p.dLo, p.dHi, p.dIdx, p.dLast = up(p.Lo), up(p.Hi), up(idx), up(p.Last)
	})
	return p.uploadErr
}

func (p *entropyPlan) close() {
	for _, b := range []*Buffer{p.dLo, p.dHi, p.dIdx, p.dLast} {
		if b != nil {
			_ = b.Close()
		}
	}
}

// ThresholdLaunch holds the device side of one batched threshold search; the benchmark
// times Launch alone.
type ThresholdLaunch struct {
	dev               int
	n, method, levels int
	zeroSpike         bool
	counts            *Buffer // [n, 2048] uint64 (owned unless borrowed)
	ownCounts         bool
	need, scratch     *Buffer
	bins, obj, empty  *Buffer
	plan              *entropyPlan
}

// NewThresholdLaunch prepares a search over the n histograms whose counts are in counts
// ([n, 2048] uint64 on the device). method is calib.MethodPercentile, MethodMSE or
// MethodEntropy; need (percentile only) holds each histogram's target count.
func NewThresholdLaunch(dev int, counts *Buffer, n int, method calib.Method, levels int, zeroSpike bool, need []uint64, plan *entropyPlan) (*ThresholdLaunch, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuda: threshold search over %d histograms", n)
	}
	if err := counts.span("threshold counts", 0, n*calib.NumBins*8); err != nil {
		return nil, err
	}
	t := &ThresholdLaunch{dev: dev, n: n, method: int(method), levels: levels, zeroSpike: zeroSpike, counts: counts, plan: plan}
	var err error
	alloc := func(size int) *Buffer {
		if err != nil {
			return nil
		}
		var b *Buffer
		b, err = Alloc(dev, size)
		return b
	}
	t.bins, t.obj, t.empty = alloc(4*n), alloc(8*n), alloc(4*n)
	switch method {
	case calib.MethodPercentile:
		if len(need) != n {
			err = fmt.Errorf("cuda: percentile search needs %d targets, got %d", n, len(need))
			break
		}
		t.need = alloc(8 * n)
		if err == nil {
			err = t.need.CopyFromHost(0, unsafe.Slice((*byte)(unsafe.Pointer(&need[0])), 8*n))
		}
	case calib.MethodEntropy:
		if plan == nil {
			err = fmt.Errorf("cuda: entropy search needs a plan")
			break
		}
		if err = plan.upload(dev); err == nil {
			sz := int(C.autoq_thresholds_scratch_bytes(C.int(n), 4, C.int(len(plan.Lo))))
			t.scratch = alloc(sz)
		}
	case calib.MethodMSE:
	default:
		err = fmt.Errorf("cuda: threshold method %v has no kernel", method)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Launch runs the search kernel (asynchronously, on the default stream).
func (t *ThresholdLaunch) Launch() error {
	var lo, hi, idx, last unsafe.Pointer
	np := 0
	if t.plan != nil && t.method == int(calib.MethodEntropy) {
		lo, hi, idx, last, np = t.plan.dLo.ptr, t.plan.dHi.ptr, t.plan.dIdx.ptr, t.plan.dLast.ptr, len(t.plan.Lo)
	}
	return call(func() C.int {
		return C.autoq_thresholds(C.int(t.dev), (*C.uint64_t)(t.counts.ptr), C.int(t.n), C.int(t.method),
			(*C.uint64_t)(ptrOrNil(t.need)), C.int(t.levels), b2i(t.zeroSpike), (*C.int32_t)(lo), (*C.int32_t)(hi), C.int(np),
			(*C.int32_t)(idx), (*C.int32_t)(last), (*C.double)(ptrOrNil(t.scratch)), (*C.int32_t)(t.bins.ptr),
			(*C.double)(t.obj.ptr), (*C.int32_t)(t.empty.ptr), nil)
	})
}

// Results copies back bins, objectives and empty flags.
func (t *ThresholdLaunch) Results() (bins []int32, obj []float64, empty []int32, err error) {
	bins, obj, empty = make([]int32, t.n), make([]float64, t.n), make([]int32, t.n)
	if err = t.bins.CopyToHost(i32Bytes(bins), 0); err != nil {
		return
	}
	if err = t.obj.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&obj[0])), 8*t.n), 0); err != nil {
		return
	}
	err = t.empty.CopyToHost(i32Bytes(empty), 0)
	return
}

// Close frees the launch's buffers (not the counts or the plan).
func (t *ThresholdLaunch) Close() {
	for _, b := range []*Buffer{t.need, t.scratch, t.bins, t.obj, t.empty} {
		if b != nil {
			_ = b.Close()
		}
	}
	if t.ownCounts && t.counts != nil {
		_ = t.counts.Close()
	}
}

// KLLogDev evaluates calib.KLLog on the device for each input (a test hook).
func KLLogDev(dev int, in []float64) ([]float64, error) {
	n := len(in)
	if n == 0 {
		return nil, nil
	}
	bi, err := Alloc(dev, 8*n)
	if err != nil {
		return nil, err
	}
	defer bi.Close()
	bo, err := Alloc(dev, 8*n)
	if err != nil {
		return nil, err
	}
	defer bo.Close()
	if err := bi.CopyFromHost(0, unsafe.Slice((*byte)(unsafe.Pointer(&in[0])), 8*n)); err != nil {
		return nil, err
	}
	if err := call(func() C.int {
		return C.autoq_kllog(C.int(dev), (*C.double)(bi.ptr), (*C.double)(bo.ptr), C.int64_t(n), nil)
	}); err != nil {
		return nil, err
	}
	out := make([]float64, n)
	err = bo.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 8*n), 0)
	return out, err
}

func u64Bytes(v []uint64) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
}
