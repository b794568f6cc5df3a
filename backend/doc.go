// Package backend is the small interface between autoq's orchestration (quantize,
// calibrate, model runner, pipeline) and the machines that do the arithmetic: the pure-Go
// CPU backend, which is the reference and the default, and the CUDA backend in package
// cgo (build tag cuda), which registers itself here.
//
// The CPU implementation delegates to the reference functions of packages quant and calib;
// every CUDA kernel must reproduce them (bit for bit for integers, counts and scales;
// within a documented tolerance for float GEMM outputs).
//
// Open("auto") picks CUDA device 0 when a cuda-tagged binary finds one and falls back to
// the CPU, reporting why ("no CUDA device: ...") through Fallback.
package backend
