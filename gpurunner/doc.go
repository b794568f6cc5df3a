// Package gpurunner is the GPU Llama runner: a Llama-family prefill on one CUDA device
// (model.Runner) with an F32 residual stream, F16 activations into and out of every linear
// layer, cuBLAS F16 GEMMs for full-precision layers and autoq's W8A8 / W4A16 kernels for
// quantized ones, plus device-side calibration histograms of every linear input and a
// synthetic runner (random weights generated on the device) for benchmarks of real shapes.
//
// Everything but this file and paths.go needs the build tag cuda: the runner calls the
// kernels through package cgo's bindings (which kernel at which M is cgo's dispatch table).
// Importing the package (cmd/autoq does so in cuda-tagged builds) registers the runner with
// model.RegisterCUDARunner, so model.OpenRunner("cuda") finds it.
package gpurunner
