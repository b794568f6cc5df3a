// Package cgo is autoq's CUDA backend: thin Go wrappers over the C API of the static
// library built from cuda/*.cu (cuda/autoq.h, autoq_gemm.h, autoq_model.h, autoq_gptq.h),
// and the one table that says which kernel runs where (dispatch.go: per op, which kernel
// variant for which token count M or which call). On top of the bindings it implements the
// backend interfaces on a GPU: backend.Backend (quantization and calibration kernels, the CPU
// reference for anything they do not take), backend.GEMM, and the device side of the
// benchmark timers (backend.GEMMTimer, backend.KernelTimer: launches and CUDA events; the
// sweeps live in package bench). The GPU model runner is package gpurunner; the weight
// layouts the GEMM kernels read are package kernels/layout.
//
// Everything but this file and dispatch.go needs the build tag cuda and the library in
// build/cuda (`make cuda-lib`). Importing the package (cmd/autoq does so in cuda-tagged
// builds) registers the CUDA backend with package backend; the probe never crashes on a
// machine without a GPU or driver: it reports "no CUDA device: <reason>".
//
// Errors: every C call returns a status and leaves a message (naming the operation and the
// kernel; out-of-memory says requested and free bytes) in a thread-local buffer; call reads
// it on the same OS thread and returns an *Error. No panics cross the cgo boundary.
//
// Lifetimes: device buffers, pinned host buffers, streams and events are released with
// Close. A finalizer only records leaks (Leaks), which the tests assert to be zero.
package cgo
