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

// CopyFrom copies n bytes from src at byte offset srcOff into the buffer at off (device to
// device, both on the buffer's device) and waits for the copy.
func (b *Buffer) CopyFrom(off int, src *Buffer, srcOff, n int) error {
	if src == nil || src.dev != b.dev {
		return fmt.Errorf("cuda: device copy needs a source buffer on device %d", b.dev)
	}
	if err := b.span("device copy to", off, n); err != nil || n == 0 {
		return err
	}
	if err := src.span("device copy from", srcOff, n); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_memcpy_d2d(C.int(b.dev), unsafe.Add(b.ptr, off), unsafe.Add(src.ptr, srcOff), C.size_t(n), nil)
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

// deviceHandle is what a Pinned, a Stream and an Event hold: a pointer CUDA made for one
// device (pinned memory, a stream or an event handle), released once.
type deviceHandle struct {
	dev    int
	ptr    unsafe.Pointer
	closed bool
}

// newHandle makes the handle of a *T (a Pinned, a Stream or an Event) on dev with create and
// tracks the *T for leaks.
func newHandle[T any, PT interface {
	*T
	handleOf() *deviceHandle
}](dev int, create func(C.int, *unsafe.Pointer) C.int) (*T, error) {
	var p unsafe.Pointer
	if err := call(func() C.int { return create(C.int(dev), &p) }); err != nil {
		return nil, err
	}
	t := new(T)
	*PT(t).handleOf() = deviceHandle{dev: dev, ptr: p}
	trackLeak(t, func(t *T) bool { return PT(t).handleOf().closed })
	return t, nil
}

func (h *deviceHandle) handleOf() *deviceHandle { return h }

// destroy releases the handle with destroy; a second call is a no-op.
func (h *deviceHandle) destroy(destroy func(C.int, unsafe.Pointer) C.int) error {
	if h.closed {
		return nil
	}
	h.closed = true
	return call(func() C.int { return destroy(C.int(h.dev), h.ptr) })
}

// Pinned is page-locked host memory for asynchronous copies.
type Pinned struct {
	deviceHandle
	size int
}

// AllocPinned allocates size bytes of pinned host memory.
func AllocPinned(dev, size int) (*Pinned, error) {
	h, err := newHandle[Pinned](dev, func(d C.int, p *unsafe.Pointer) C.int { return C.autoq_host_alloc(d, p, C.size_t(size)) })
	if err != nil {
		return nil, err
	}
	h.size = size
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
	if h == nil {
		return nil
	}
	return h.destroy(func(d C.int, p unsafe.Pointer) C.int { return C.autoq_host_free(d, p) })
}

// Stream is a CUDA stream (non-blocking with respect to the default stream).
type Stream struct{ deviceHandle }

// NewStream creates a stream on device dev.
func NewStream(dev int) (*Stream, error) {
	return newHandle[Stream](dev, func(d C.int, p *unsafe.Pointer) C.int { return C.autoq_stream_create(d, p) })
}

// handle is the cudaStream_t (nil stream: the legacy default stream).
func (s *Stream) handle() unsafe.Pointer {
	if s == nil {
		return nil
	}
	return s.ptr
}

// Synchronize waits for the stream's work and reports asynchronous errors.
func (s *Stream) Synchronize() error {
	return call(func() C.int { return C.autoq_stream_synchronize(C.int(s.dev), s.ptr) })
}

// Close destroys the stream.
func (s *Stream) Close() error {
	if s == nil {
		return nil
	}
	return s.destroy(func(d C.int, p unsafe.Pointer) C.int { return C.autoq_stream_destroy(d, p) })
}

// CopyFromPinnedAsync enqueues a copy of src[srcOff:srcOff+n] to b at dstOff on s.
func (b *Buffer) CopyFromPinnedAsync(s *Stream, dstOff int, src *Pinned, srcOff, n int) error {
	return b.copyPinnedAsync(s, dstOff, src, srcOff, n, true)
}

// CopyToPinnedAsync enqueues a copy of n bytes of b at srcOff into dst at dstOff on s.
func (b *Buffer) CopyToPinnedAsync(s *Stream, dst *Pinned, dstOff, srcOff, n int) error {
	return b.copyPinnedAsync(s, srcOff, dst, dstOff, n, false)
}

// copyPinnedAsync enqueues a copy of n bytes between b at off and h at hOff on s: into b
// when toDevice, else out of it.
func (b *Buffer) copyPinnedAsync(s *Stream, off int, h *Pinned, hOff, n int, toDevice bool) error {
	op, dir := "async copy to host", "to"
	if toDevice {
		op, dir = "async copy to device", "from"
	}
	if err := b.span(op, off, n); err != nil {
		return err
	}
	if hOff < 0 || hOff+n > h.size {
		return fmt.Errorf("cuda: async copy of %d bytes %s offset %d of a %d-byte pinned buffer", n, dir, hOff, h.size)
	}
	dp, hp := unsafe.Add(b.ptr, off), unsafe.Add(h.ptr, hOff)
	return call(func() C.int {
		if toDevice {
			return C.autoq_memcpy_h2d_async(C.int(b.dev), dp, hp, C.size_t(n), s.handle())
		}
		return C.autoq_memcpy_d2h_async(C.int(b.dev), hp, dp, C.size_t(n), s.handle())
	})
}

// Event is a CUDA event for timing.
type Event struct{ deviceHandle }

// NewEvent creates an event on device dev.
func NewEvent(dev int) (*Event, error) {
	return newHandle[Event](dev, func(d C.int, p *unsafe.Pointer) C.int { return C.autoq_event_create(d, p) })
}

// Record enqueues the event on s (nil: the default stream).
func (e *Event) Record(s *Stream) error {
	return call(func() C.int { return C.autoq_event_record(C.int(e.dev), e.ptr, s.handle()) })
}

// Synchronize waits for the event.
func (e *Event) Synchronize() error {
	return call(func() C.int { return C.autoq_event_synchronize(C.int(e.dev), e.ptr) })
}

// ElapsedMs is the time between two recorded events in milliseconds (waits for end).
func ElapsedMs(start, end *Event) (float64, error) {
	if err := end.Synchronize(); err != nil {
		return 0, err
	}
	var ms C.float
	err := call(func() C.int { return C.autoq_event_elapsed_ms(C.int(end.dev), start.ptr, end.ptr, &ms) })
	return float64(ms), err
}

// Close destroys the event.
func (e *Event) Close() error {
	if e == nil {
		return nil
	}
	return e.destroy(func(d C.int, p unsafe.Pointer) C.int { return C.autoq_event_destroy(d, p) })
}
