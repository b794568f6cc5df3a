// Package bench holds the benchmarks behind `autoq bench kernels` and `autoq bench gemm`:
// the shapes and sweeps (Llama presets, token counts), timing through a backend's device
// timer (CUDA events on a GPU, wall clock on the CPU), throughput against the device's
// memory bandwidth, speedups against the FP16 baseline measured in the same run, and the
// outputs (aligned tables, JSON, CSV, PNG charts).
//
// Timings are never asserted in tests: speed is shown side by side with a baseline.
package bench
