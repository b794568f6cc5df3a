//go:build cuda

package cgo

// #include "autoq_gemm.h"
import "C"

// Bindings of cuda/bench_helpers.cu: the device-side random fill (benchmark inputs and the
// synthetic model runner's weights) and the spin kernel that holds the stream.

// FillKind is what FillRandom writes (autoq_gemm_fill_random's kind).
type FillKind int

const (
	FillBytes      FillKind = 0 // random bytes
	FillF16Sym     FillKind = 1 // F16 uniform in [-amp, amp]
	FillF32Pos     FillKind = 2 // F32 uniform in [amp/8, amp]
	FillF16Pos     FillKind = 3 // F16 uniform in [amp/8, amp]
	FillF16Nibbles FillKind = 4 // F16 integers in [0, 15]
)

// ElemBytes is the size of one element of kind k.
func (k FillKind) ElemBytes() int {
	switch k {
	case FillBytes:
		return 1
	case FillF32Pos:
		return 4
	}
	return 2
}

// FillRandom writes n deterministic pseudo-random elements of kind into b (element i
// depends only on seed and i).
func FillRandom(b *Buffer, n int, kind FillKind, amp float32, seed uint64) error {
	if err := checkBufs("fill random", b, n*kind.ElemBytes()); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_fill_random(C.int(b.dev), b.ptr, C.int64_t(n), C.int(kind), C.float(amp), C.uint64_t(seed), nil)
	})
}

// Spin occupies device dev's default stream for about ns nanoseconds (at most 1 s), so that
// launches queued behind it start back to back.
func Spin(dev int, ns int64) error {
	return call(func() C.int { return C.autoq_gemm_spin(C.int(dev), C.int64_t(ns), nil) })
}
