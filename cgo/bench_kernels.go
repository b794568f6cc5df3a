//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
)

var _ backend.KernelTimer = (*Backend)(nil)

// timeOnDevice records events around f on the default stream and returns the elapsed
// milliseconds.
func timeOnDevice(dev int, e0, e1 *Event, f func() error) (float64, error) {
	if err := e0.Record(nil); err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	if err := e1.Record(nil); err != nil {
		return 0, err
	}
	return ElapsedMs(e0, e1)
}

// PrepareKernel uploads a benchmark case's inputs to the device and returns a run function
// that times the kernel launches alone with CUDA events (no host transfers).
func (b *Backend) PrepareKernel(k backend.KernelCase) (func() (float64, error), func(), error) {
	e0, err := NewEvent(b.dev)
	if err != nil {
		return nil, nil, err
	}
	e1, err := NewEvent(b.dev)
	if err != nil {
		e0.Close()
		return nil, nil, err
	}
	var owned []*Buffer
	var closers []func()
	cleanup := func() {
		for _, c := range closers {
			c()
		}
		freeBuffers(owned...)
		e0.Close()
		e1.Close()
	}
	fail := func(err error) (func() (float64, error), func(), error) {
		cleanup()
		return nil, nil, fmt.Errorf("bench %s: %w", k.Op, err)
	}
	alloc := func(n int) (*Buffer, error) {
		buf, err := Alloc(b.dev, n)
		if err == nil {
			owned = append(owned, buf)
		}
		return buf, err
	}
	// timed returns a run function that times reps back-to-back executions of f between one
	// pair of events and reports the mean: reps is chosen (after a warm-up execution) so a
	// timed run lasts about 2 ms, which amortises launch gaps and event resolution for
	// kernels of a few microseconds. The first error of the calibration is returned by run.
	timed := func(f func() error) func() (float64, error) {
		reps := 0
		return func() (float64, error) {
			if reps == 0 {
				if err := f(); err != nil {
					return 0, err
				}
				one, err := timeOnDevice(b.dev, e0, e1, f)
				if err != nil {
					return 0, err
				}
				reps = 1
				if one < 2 {
					reps = min(100, int(2/max(one, 0.001))+1)
				}
			}
			ms, err := timeOnDevice(b.dev, e0, e1, func() error {
				for range reps {
					if err := f(); err != nil {
						return err
					}
				}
				return nil
			})
			return ms / float64(reps), err
		}
	}

	switch k.Op {
	case backend.KernelScales, backend.KernelQuantize, backend.KernelMSESearch:
		rows, cols, l, ok := weightOK(k.W, k.Scheme)
		if !ok {
			return fail(fmt.Errorf("bad weight or scheme"))
		}
		// Copies of the weight (and of the quantized output) that successive executions
		// rotate through, at least 256 MiB in all, so the timings are not L2 cache hits
		// (a 4096x4096 F16 weight is 32 MiB; an H100's L2 is 50 MiB).
		copies := min(8, max(1, (256<<20+len(k.W.Data)-1)/max(len(k.W.Data), 1)))
		ms := make([]Matrix, copies)
		for i := range ms {
			wb, err := alloc(len(k.W.Data))
			if err != nil {
				return fail(err)
			}
			if err := wb.CopyFromHost(0, k.W.Data); err != nil {
				return fail(err)
			}
			ms[i] = Matrix{Buf: wb, DType: k.W.DType, Rows: rows, Cols: cols}
		}
		next := 0
		rotate := func() int { i := next; next = (next + 1) % copies; return i }
		m := ms[0]
		var bs [5]*Buffer
		for i := range bs {
			if bs[i], err = alloc(4 * l.nParams); err != nil {
				return fail(err)
			}
		}
		lo, hi, nf, sc, zp := bs[0], bs[1], bs[2], bs[3], bs[4]
		if k.Scheme.Symmetric {
			zp = nil
		}
		scales := func(m Matrix) error {
			if err := GroupRangesDev(m, k.Scheme, lo, hi, nf); err != nil {
				return err
			}
			return ComputeParamsDev(b.dev, k.Scheme, lo, hi, l.nParams, sc, zp)
		}
		switch k.Op {
		case backend.KernelScales:
			return timed(func() error { return scales(ms[rotate()]) }), cleanup, nil
		case backend.KernelMSESearch:
			return timed(func() error {
				m := ms[rotate()]
				if err := GroupRangesDev(m, k.Scheme, lo, hi, nf); err != nil {
					return err
				}
				return MSESearchDev(m, k.Scheme, lo, hi, sc, zp, nil, nil)
			}), cleanup, nil
		}
		// Quantize: the parameters of the weight (all copies are equal), then time the
		// quantization alone.
		if err := scales(m); err != nil {
			return fail(err)
		}
		qs := make([]*Buffer, copies)
		for i := range qs {
			if qs[i], err = alloc(rows * qRowBytes(k.Scheme.Bits, cols)); err != nil {
				return fail(err)
			}
		}
		flag, err := alloc(4)
		if err != nil {
			return fail(err)
		}
		return timed(func() error {
			i := rotate()
			return QuantizeDev(ms[i], k.Scheme, sc, zp, qs[i], flag)
		}), cleanup, nil

	case backend.KernelHistogram:
		total := 0
		for _, x := range k.Xs {
			total += align256(len(x.Data))
		}
		buf, err := alloc(total)
		if err != nil {
			return fail(err)
		}
		ins := make([]HistInput, len(k.Xs))
		off := 0
		for i, x := range k.Xs {
			if err := buf.CopyFromHost(off, x.Data); err != nil {
				return fail(err)
			}
			ins[i] = HistInput{Buf: buf, Off: off, N: x.NumElements(), DType: x.DType}
			off += align256(len(x.Data))
		}
		batch, err := NewHistBatch(b.dev, ins)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { batch.Close() })
		return timed(batch.Launch), cleanup, nil

	case backend.KernelThresholds:
		o, ok := thresholdOptions(calib.DefaultOptions(k.Method))
		if !ok {
			return fail(fmt.Errorf("method %v has no GPU kernel", k.Method))
		}
		n := len(k.Hists)
		counts := make([]uint64, 0, n*calib.NumBins)
		var need []uint64
		for _, h := range k.Hists {
			counts = append(counts, h.Counts[:]...)
			v, err := percentileNeed(o.Percentile, h.Count)
			if err != nil {
				return fail(err)
			}
			need = append(need, v)
		}
		cb, err := alloc(8 * len(counts))
		if err != nil {
			return fail(err)
		}
		if err := cb.CopyFromHost(0, u64Bytes(counts)); err != nil {
			return fail(err)
		}
		var plan *entropyPlan
		if o.Method == calib.MethodEntropy {
			plan = b.plan(o.Levels + 1)
		}
		if o.Method != calib.MethodPercentile {
			need = nil
		}
		tl, err := NewThresholdLaunch(b.dev, cb, n, o.Method, o.Levels, o.ZeroSpike, need, plan)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, tl.Close)
		return timed(tl.Launch), cleanup, nil

	case backend.KernelCopy:
		src, err := alloc(k.Bytes)
		if err != nil {
			return fail(err)
		}
		dst, err := alloc(k.Bytes)
		if err != nil {
			return fail(err)
		}
		if err := src.Memset(0, k.Bytes, 0x3c); err != nil {
			return fail(err)
		}
		return timed(func() error {
			return call(func() C.int { return C.autoq_memcpy_d2d(C.int(b.dev), dst.ptr, src.ptr, C.size_t(k.Bytes), nil) })
		}), cleanup, nil
	}
	return fail(fmt.Errorf("unknown kernel case"))
}
