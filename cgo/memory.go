//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// leaks counts resources that were garbage collected without Close. Finalizers only
// count: freeing device memory from the finalizer goroutine would hide the bug.
var leaks atomic.Int64

// Leaks returns how many buffers, streams or events were collected without Close.
func Leaks() int64 { return leaks.Load() }

func trackLeak[T any](p *T, closed func(*T) bool) {
	runtime.SetFinalizer(p, func(p *T) {
		if !closed(p) {
			leaks.Add(1)
		}
	})
}

// Buffer is device memory on one device.
type Buffer struct {
	dev      int
	ptr      unsafe.Pointer
	size     int
	closed   bool
	borrowed bool // a View: Close does not free
}

// Alloc allocates size bytes on device dev (out of memory names requested and free bytes).
func Alloc(dev, size int) (*Buffer, error) {
	if size < 0 {
		return nil, fmt.Errorf("cuda: alloc of %d bytes", size)
	}
	var p unsafe.Pointer
	if err := call(func() C.int { return C.autoq_malloc(C.int(dev), &p, C.size_t(size)) }); err != nil {
		return nil, err
	}
	b := &Buffer{dev: dev, ptr: p, size: size}
	trackLeak(b, func(b *Buffer) bool { return b.closed })
	return b, nil
}

// Ptr is the device address (for kernel wrappers).
func (b *Buffer) Ptr() unsafe.Pointer { return b.ptr }

// At is the device address off bytes into the buffer.
func (b *Buffer) At(off int) unsafe.Pointer { return unsafe.Add(b.ptr, off) }

// Size is the buffer's length in bytes.
func (b *Buffer) Size() int { return b.size }

// Device is the device ordinal that owns the buffer.
func (b *Buffer) Device() int { return b.dev }

// View is a non-owning window of size bytes at byte offset off (its Close frees nothing).
func (b *Buffer) View(off, size int) (*Buffer, error) {
	if err := b.span("view", off, size); err != nil {
		return nil, err
	}
	return &Buffer{dev: b.dev, ptr: unsafe.Add(b.ptr, off), size: size, borrowed: true}, nil
}

// Close frees the memory; a second Close is a no-op.
func (b *Buffer) Close() error {
	if b == nil || b.closed {
		return nil
	}
	b.closed = true
	if b.borrowed {
		return nil
	}
	return call(func() C.int { return C.autoq_free(C.int(b.dev), b.ptr) })
}

func (b *Buffer) span(op string, off, n int) error {
	if b.closed {
		return fmt.Errorf("cuda: %s on a closed buffer", op)
	}
	if off < 0 || n < 0 || off+n > b.size {
		return fmt.Errorf("cuda: %s of %d bytes at offset %d outside a buffer of %d bytes", op, n, off, b.size)
	}
	return nil
}

// CopyFromHost copies src into the buffer at byte offset off and waits for the copy.
func (b *Buffer) CopyFromHost(off int, src []byte) error {
	if err := b.span("copy to device", off, len(src)); err != nil || len(src) == 0 {
		return err
	}
	return call(func() C.int {
		return C.autoq_memcpy_h2d(C.int(b.dev), unsafe.Add(b.ptr, off), unsafe.Pointer(&src[0]), C.size_t(len(src)), nil)
	})
}

// CopyToHost copies len(dst) bytes from byte offset off into dst and waits for the copy
// (and so for all earlier work on the default stream, surfacing kernel errors).
func (b *Buffer) CopyToHost(dst []byte, off int) error {
	if err := b.span("copy to host", off, len(dst)); err != nil || len(dst) == 0 {
		return err
	}
	return call(func() C.int {
		return C.autoq_memcpy_d2h(C.int(b.dev), unsafe.Pointer(&dst[0]), unsafe.Add(b.ptr, off), C.size_t(len(dst)), nil)
	})
}

// Memset sets n bytes at off to value (asynchronous on the default stream).
func (b *Buffer) Memset(off, n int, value byte) error {
	if err := b.span("memset", off, n); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_memset(C.int(b.dev), unsafe.Add(b.ptr, off), C.int(value), C.size_t(n), nil)
	})
}

// Pinned is page-locked host memory for asynchronous copies.
type Pinned struct {
	dev    int
	ptr    unsafe.Pointer
	size   int
	closed bool
}

// AllocPinned allocates size bytes of pinned host memory.
func AllocPinned(dev, size int) (*Pinned, error) {
	var p unsafe.Pointer
	if err := call(func() C.int { return C.autoq_host_alloc(C.int(dev), &p, C.size_t(size)) }); err != nil {
		return nil, err
	}
	h := &Pinned{dev: dev, ptr: p, size: size}
	trackLeak(h, func(h *Pinned) bool { return h.closed })
	return h, nil
}

// Bytes views the pinned memory (valid until Close).
func (h *Pinned) Bytes() []byte {
	if h.size == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(h.ptr), h.size)
}

// Close frees the memory.
func (h *Pinned) Close() error {
	if h == nil || h.closed {
		return nil
	}
	h.closed = true
	return call(func() C.int { return C.autoq_host_free(C.int(h.dev), h.ptr) })
}

// Stream is a CUDA stream (non-blocking with respect to the default stream).
type Stream struct {
	dev    int
	s      unsafe.Pointer
	closed bool
}

// NewStream creates a stream on device dev.
func NewStream(dev int) (*Stream, error) {
	var s unsafe.Pointer
	if err := call(func() C.int { return C.autoq_stream_create(C.int(dev), &s) }); err != nil {
		return nil, err
	}
	st := &Stream{dev: dev, s: s}
	trackLeak(st, func(s *Stream) bool { return s.closed })
	return st, nil
}

// handle is the cudaStream_t (nil stream: the legacy default stream).
func (s *Stream) handle() unsafe.Pointer {
	if s == nil {
		return nil
	}
	return s.s
}

// Synchronize waits for the stream's work and reports asynchronous errors.
func (s *Stream) Synchronize() error {
	return call(func() C.int { return C.autoq_stream_synchronize(C.int(s.dev), s.s) })
}

// Close destroys the stream.
func (s *Stream) Close() error {
	if s == nil || s.closed {
		return nil
	}
	s.closed = true
	return call(func() C.int { return C.autoq_stream_destroy(C.int(s.dev), s.s) })
}

// CopyFromPinnedAsync enqueues a copy of src[srcOff:srcOff+n] to b at dstOff on s.
func (b *Buffer) CopyFromPinnedAsync(s *Stream, dstOff int, src *Pinned, srcOff, n int) error {
	if err := b.span("async copy to device", dstOff, n); err != nil {
		return err
	}
	if srcOff < 0 || srcOff+n > src.size {
		return fmt.Errorf("cuda: async copy of %d bytes from offset %d of a %d-byte pinned buffer", n, srcOff, src.size)
	}
	return call(func() C.int {
		return C.autoq_memcpy_h2d_async(C.int(b.dev), unsafe.Add(b.ptr, dstOff), unsafe.Add(src.ptr, srcOff), C.size_t(n), s.handle())
	})
}

// CopyToPinnedAsync enqueues a copy of n bytes of b at srcOff into dst at dstOff on s.
func (b *Buffer) CopyToPinnedAsync(s *Stream, dst *Pinned, dstOff, srcOff, n int) error {
	if err := b.span("async copy to host", srcOff, n); err != nil {
		return err
	}
	if dstOff < 0 || dstOff+n > dst.size {
		return fmt.Errorf("cuda: async copy of %d bytes to offset %d of a %d-byte pinned buffer", n, dstOff, dst.size)
	}
	return call(func() C.int {
		return C.autoq_memcpy_d2h_async(C.int(b.dev), unsafe.Add(dst.ptr, dstOff), unsafe.Add(b.ptr, srcOff), C.size_t(n), s.handle())
	})
}

// Event is a CUDA event for timing.
type Event struct {
	dev    int
	e      unsafe.Pointer
	closed bool
}

// NewEvent creates an event on device dev.
func NewEvent(dev int) (*Event, error) {
	var e unsafe.Pointer
	if err := call(func() C.int { return C.autoq_event_create(C.int(dev), &e) }); err != nil {
		return nil, err
	}
	ev := &Event{dev: dev, e: e}
	trackLeak(ev, func(e *Event) bool { return e.closed })
	return ev, nil
}

// Record enqueues the event on s (nil: the default stream).
func (e *Event) Record(s *Stream) error {
	return call(func() C.int { return C.autoq_event_record(C.int(e.dev), e.e, s.handle()) })
}

// Synchronize waits for the event.
func (e *Event) Synchronize() error {
	return call(func() C.int { return C.autoq_event_synchronize(C.int(e.dev), e.e) })
}

// ElapsedMs is the time between two recorded events in milliseconds (waits for end).
func ElapsedMs(start, end *Event) (float64, error) {
	if err := end.Synchronize(); err != nil {
		return 0, err
	}
	var ms C.float
	err := call(func() C.int { return C.autoq_event_elapsed_ms(C.int(end.dev), start.e, end.e, &ms) })
	return float64(ms), err
}

// Close destroys the event.
func (e *Event) Close() error {
	if e == nil || e.closed {
		return nil
	}
	e.closed = true
	return call(func() C.int { return C.autoq_event_destroy(C.int(e.dev), e.e) })
}
