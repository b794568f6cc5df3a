package backend

import (
	"fmt"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// GEMM multiplies activations by quantized weights. Shapes follow package quant's
// reference GEMMs: activations [M, K] row-major (M tokens), weights [N, K] (N outputs),
// outputs [M, N]. Host slices in, host slices out: the API the tests and the model runner
// use. The CPU implementation is quant's reference; the CUDA one (package cgo) runs the
// tensor-core kernels and returns their F16 outputs widened to float32.
type GEMM interface {
	Info() DeviceInfo
	// QuantizeActivationsPerToken quantizes x [M, K] to int8 with one scale per row. dt
	// (F16 or BF16) is the dtype the device reads; x's values must be representable in it.
	QuantizeActivationsPerToken(x []float32, M, K int, dt tensor.DType) (q []int8, scales []float32, err error)
	// QuantizeActivationsStatic quantizes x with the per-tensor scale amax/127.
	QuantizeActivationsStatic(x []float32, M, K int, dt tensor.DType, amax float32) (q []int8, scale float32, err error)
	// GemmI8 returns the exact int32 accumulators of aq [M, K] times w's int8 levels.
	GemmI8(aq []int8, M int, w *quant.QTensor) ([]int32, error)
	// GemmW8A8 is quant.GemmW8A8 (8-bit symmetric per-channel/per-tensor weights).
	GemmW8A8(aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error)
	// GemmW4A16 is quant.GemmW4A16 (4-bit weights); a must be F16-representable on CUDA.
	GemmW4A16(a []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error)
	// GemmF16 multiplies a [M, K] by the float weight w [N, K] (the FP16 baseline on CUDA,
	// float32 on the CPU).
	GemmF16(a []float32, M int, w []float32, N, K int) ([]float32, error)
	Close() error
}

// GEMMTiming is one kernel's latencies at one point.
type GEMMTiming struct {
	Ms    []float64 // per timed iteration, milliseconds
	Bytes int64     // bytes the kernel must move at least (inputs read once, output written once)
}

// GEMMTimer benchmarks GEMM kernels on inputs that stay where the kernels run (device
// memory for CUDA), for `autoq bench gemm`.
type GEMMTimer interface {
	Info() DeviceInfo
	// Kernels lists the kernel names in report order; the first is the baseline the others
	// are compared with.
	Kernels() []string
	// Prepare builds random inputs for a weight of K inputs and N outputs and up to maxM
	// tokens (releasing those of the previous shape).
	Prepare(K, N, maxM int) error
	// Time runs kernel at M tokens warmup times untimed, then iters timed runs.
	Time(kernel string, M, warmup, iters int) (GEMMTiming, error)
	// Notes describes how timing is done (timer, cache handling) for the report header.
	Notes() string
	Close() error
}

// GEMMOpener opens the GEMM and the GEMM timer of CUDA device index.
type GEMMOpener func(index int) (GEMM, GEMMTimer, error)

var cudaGEMM GEMMOpener

// RegisterCUDAGEMM is called by package cgo's init in cuda-tagged builds.
func RegisterCUDAGEMM(open GEMMOpener) {
	mu.Lock()
	defer mu.Unlock()
	cudaGEMM = open
}

func openCUDAGEMM(i int) (GEMM, GEMMTimer, error) {
	mu.Lock()
	open := cudaGEMM
	mu.Unlock()
	if open == nil {
		return nil, nil, fmt.Errorf("no CUDA GEMM: this autoq binary was built without CUDA (build with -tags cuda)")
	}
	return open(i)
}
