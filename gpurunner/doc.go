// Package gpurunner is the GPU Llama runner: a Llama-family prefill on one CUDA device
// (model.Runner) with an F32 residual stream, F16 activations into and out of every linear
// layer, cuBLAS F16 GEMMs for full-precision layers and autoq's W8A8 / W4A16 kernels for
// quantized ones, plus device-side calibration histograms of every linear input and a
// synthetic runner (random weights generated on the device) for benchmarks of real shapes.
// Layers no kernel takes (8-bit weight-only, the 3-, 5-, 6- and 7-bit widths, shapes the
// kernels refuse) run on cuBLAS F16 with their dequantized weights; paths.go says which
// path each layer takes and why ("fallback-f16 (...)" in the kernel summary).
//
// Everything but this file and paths.go needs the build tag cuda: the runner calls the
// kernels through package cgo's bindings (which kernel at which M is cgo's dispatch table).
// Importing the package (cmd/autoq does so in cuda-tagged builds) registers the runner with
// model.RegisterCUDARunner, so model.OpenRunner("cuda") finds it.
package gpurunner
