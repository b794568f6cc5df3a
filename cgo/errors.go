//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"errors"
	"fmt"
	"runtime"
)

// cudaErrorMemoryAllocation is cudaError_t's out-of-memory code.
const cudaErrorMemoryAllocation = 2

// Error is a failed call into the CUDA library.
type Error struct {
	Status int    // cudaError_t (> 0) or one of autoq's negative codes
	Msg    string // from autoq_last_error: names the operation and the kernel
}

func (e *Error) Error() string { return "cuda: " + e.Msg }

// IsOutOfMemory reports whether err is a CUDA out-of-memory error.
func IsOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == cudaErrorMemoryAllocation
}

// call runs f (one C call) and turns a non-zero status into an *Error carrying the
// thread-local message. The goroutine stays on one OS thread so that the message read is
// the one f left.
func call(f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st == 0 {
		return nil
	}
	msg := C.GoString(C.autoq_last_error())
	if msg == "" {
		msg = fmt.Sprintf("status %d", int(st))
	}
	return &Error{Status: int(st), Msg: msg}
}
