// Package bench holds the benchmarks behind `autoq bench kernels` and `autoq bench gemm`:
// the shapes and sweeps (Llama presets, token counts), the timing method (weight copies
// that defeat the device cache, warm-up, back-to-back timed calls, reps per timed run), the
// bytes each kernel must move, throughput against the device's memory bandwidth, speedups
// against the FP16 baseline measured in the same run, and the outputs (aligned tables,
// JSON, CSV, PNG charts). A backend only launches and times (backend.GEMMTimer,
// backend.KernelTimer: CUDA events on a GPU, the wall clock on the CPU); bench never
// imports the CUDA packages.
//
// Timings are never asserted in tests: speed is shown side by side with a baseline.
package bench
