//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
)

// The device side of `autoq bench kernels` (backend.KernelTimer): a case's inputs uploaded
// once, and a run function that times reps executions between one pair of CUDA events.
// How many reps, and how many weight copies to rotate through, is package bench's choice.

var (
	_ backend.KernelTimer = (*Backend)(nil)
	// KernelVariants (bench.KernelVariants): the other kernels of quantize and histogram.
	_ interface {
		KernelVariants(op string) []string
		UseKernelVariant(op, name string) error
	} = (*Backend)(nil)
)

// benchOps maps the benchmark's ops to the dispatch table's.
var benchOps = map[string]Op{backend.KernelQuantize: OpQuantize, backend.KernelHistogram: OpHistogram}

// KernelVariants lists op's kernels other than the dispatch table's first choice.
func (b *Backend) KernelVariants(op string) []string {
	var out []string
	if o, ok := benchOps[op]; ok {
		for _, k := range Kernels(o)[1:] {
			out = append(out, string(k))
		}
	}
	return out
}

// UseKernelVariant makes the benchmark's later cases of op run kernel name ("": the
// dispatch table's choice). Only PrepareKernel reads it: the backend's own methods always
// follow the table.
func (b *Backend) UseKernelVariant(op, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := benchOps[op]
	if !ok {
		return fmt.Errorf("cuda: kernel %q has no variants", op)
	}
	if name != "" && !knownKernel(o, Kernel(name)) {
		return fmt.Errorf("cuda: %s has no kernel %q (have %v)", op, name, Kernels(o))
	}
	b.forced[o] = Kernel(name)
	return nil
}

func (b *Backend) forcedKernel(o Op) Kernel {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.forced[o]
}

// timeReps records events around reps executions of f on the default stream and returns
// the elapsed milliseconds.
func timeReps(e0, e1 *Event, reps int, f func() error) (float64, error) {
	if err := e0.Record(nil); err != nil {
		return 0, err
	}
	for range reps {
		if err := f(); err != nil {
			return 0, err
		}
	}
	if err := e1.Record(nil); err != nil {
		return 0, err
	}
	return ElapsedMs(e0, e1)
}

// PrepareKernel uploads a benchmark case's inputs to the device and returns a run function
// that times reps back-to-back executions of the kernels alone (no host transfers).
func (b *Backend) PrepareKernel(k backend.KernelCase) (func(int) (float64, error), func(), error) {
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
	fail := func(err error) (func(int) (float64, error), func(), error) {
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
	timed := func(f func() error) func(int) (float64, error) {
		return func(reps int) (float64, error) { return timeReps(e0, e1, reps, f) }
	}

	switch k.Op {
	case backend.KernelScales, backend.KernelQuantize, backend.KernelMSESearch:
		rows, cols, l, ok := weightOK(k.W, k.Scheme)
		if !ok {
			return fail(fmt.Errorf("bad weight or scheme"))
		}
		copies := max(k.Copies, 1)
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
		// quantization alone, with the kernel the table picks (or the one forced).
		if err := scales(ms[0]); err != nil {
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
		kern := b.forcedKernel(OpQuantize)
		if kern == "" {
			if kern, err = quantizeKernel(ms[0], k.Scheme, qs[0]); err != nil {
				return fail(err)
			}
		}
		return timed(func() error {
			i := rotate()
			return QuantizeDevWith(kern, ms[i], k.Scheme, sc, zp, qs[i], flag)
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
		if kern := b.forcedKernel(OpHistogram); kern != "" {
			return timed(func() error { return batch.LaunchWith(kern) }), cleanup, nil
		}
		return timed(batch.Launch), cleanup, nil

	case backend.KernelThresholds:
		o, ok := thresholdOptions(calib.DefaultOptions(k.Method))
		if !ok {
			return fail(fmt.Errorf("method %v has no GPU kernel", k.Method))
		}
		tl, cb, err := b.thresholdLaunch(k.Hists, o)
		if err != nil {
			return fail(err)
		}
		owned = append(owned, cb)
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
