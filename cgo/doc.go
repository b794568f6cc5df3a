// Package cgo is autoq's CUDA backend: thin Go wrappers over the C API of the static
// library built from cuda/*.cu (cuda/autoq.h), and a backend.Backend that runs the
// quantization and calibration kernels on a GPU, falling back to the CPU reference for
// anything it does not accelerate.
//
// Everything but this file needs the build tag cuda and the library in build/cuda
// (`make cuda`). Importing the package (cmd/autoq does so in cuda-tagged builds) registers
// the CUDA backend with package backend; the probe never crashes on a machine without a
// GPU or driver: it reports "no CUDA device: <reason>".
//
// Errors: every C call returns a status and leaves a message (naming the operation and the
// kernel; out-of-memory says requested and free bytes) in a thread-local buffer; call reads
// it on the same OS thread and returns an *Error. No panics cross the cgo boundary.
//
// Lifetimes: device buffers, pinned host buffers, streams and events are released with
// Close. A finalizer only records leaks (Leaks), which the tests assert to be zero.
package cgo
