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

// What a timed GEMM kernel computes (GEMMKernel.Op); with GEMMKernel.FloatBytes it fixes
// the bytes the kernel must move at least (package bench counts them).
const (
	GEMMFloat     = "float"      // float activations x float weights (the baseline)
	GEMMW8A8      = "w8a8"       // int8 activations (quantized beforehand) x int8 weights
	GEMMW8A8AQ    = "w8a8+aq"    // the same plus the per-token activation quantization
	GEMMW4A16G128 = "w4a16-g128" // float activations x 4-bit weights, groups of 128
)

// GEMMKernel is one kernel a GEMMTimer runs.
type GEMMKernel struct {
	Name string
	Op   string // GEMMFloat, GEMMW8A8, GEMMW8A8AQ or GEMMW4A16G128
	// FloatBytes is the size of the kernel's float activations, outputs and (GEMMFloat)
	// weights: 2 for F16 on a GPU, 4 for the CPU's float32.
	FloatBytes int
}

// GEMMTimer is the device side of `autoq bench gemm`: GEMM kernels on inputs that stay where
// the kernels run (device memory for CUDA), launched one call at a time, and a clock. The
// sweep itself (weight copies to defeat the cache, warm-up, the timed loop, bytes and
// speedups) is package bench's.
type GEMMTimer interface {
	Info() DeviceInfo
	// Kernels lists the kernels in report order; the first is the baseline the others are
	// compared with.
	Kernels() []GEMMKernel
	// Notes describes the clock and the inputs for the report header.
	Notes() string
	// CacheBytes is the cache that weight copies must overflow so that every call streams
	// its weights from memory (the GPU's L2), 0 when there is none to defeat; FreeBytes the
	// memory left for inputs (0: not limited).
	CacheBytes() int
	FreeBytes() (uint64, error)
	// Prepare builds random inputs for a weight of K inputs and N outputs and up to maxM
	// tokens (releasing those of the previous shape), keeping copies(bytes) copies of each
	// weight encoding of that many bytes.
	Prepare(K, N, maxM int, copies func(weightBytes int) int) error
	// Launch runs kernel once at M tokens on weight copy i modulo the copies (queued on the
	// device's default stream where there is one).
	Launch(kernel string, M, i int) error
	// TimeEach runs f(0), ..., f(n-1), each timed alone (device events around each call on
	// a GPU, after holding the device holdNs nanoseconds so that the calls queue back to
	// back; the wall clock on the CPU), and returns each call's milliseconds.
	TimeEach(n int, holdNs int64, f func(i int) error) ([]float64, error)
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
