package backend

import (
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// DeviceInfo describes what a backend runs on.
type DeviceInfo struct {
	Kind        string // "cpu" or "cuda"
	Index       int    // CUDA ordinal; 0 for the CPU
	Name        string // "NVIDIA H100 80GB HBM3", or the CPU model
	SMs         int    // multiprocessors (CUDA) or logical cores (CPU)
	MemoryBytes uint64 // device memory (CUDA) or 0
	CCMajor     int    // compute capability (CUDA)
	CCMinor     int
	// MemBandwidthGBs is the theoretical memory bandwidth in GB/s read off the device
	// (CUDA), or 0 when unknown.
	MemBandwidthGBs float64
}

// Backend is what the orchestration layer asks of a machine. Weights are [rows=out,
// cols=in] tensors in F32, F16 or BF16; activations are tensors whose last dimension is the
// channel. Every method returns an error naming the operation rather than panicking.
type Backend interface {
	Info() DeviceInfo
	Close() error

	// GroupRanges returns, for each scale group of w under scheme s ([rows, groups]
	// row-major; one entry for PerTensor), the min and max of its values. NaN/Inf in w is an
	// error naming name and the element.
	GroupRanges(name string, w *tensor.Tensor, s quant.Scheme) (lo, hi []float32, err error)

	// SearchParams chooses scales (and zero points when asymmetric) with the given search.
	SearchParams(name string, w *tensor.Tensor, s quant.Scheme, opt quant.SearchOptions) (scales []float32, zeros []int32, err error)

	// Quantize applies given scales/zeros to w.
	Quantize(name string, w *tensor.Tensor, s quant.Scheme, scales []float32, zeros []int32) (*quant.QTensor, error)

	// Dequantize returns the F32 values a QTensor stands for.
	Dequantize(q *quant.QTensor) (*tensor.Tensor, error)

	// HistogramAdd adds each xs[i] (F32/F16/BF16) to hs[i] with the exact-merge bin rule of
	// package calib. Many tensors per call let the GPU batch them in one launch.
	HistogramAdd(hs []*calib.Histogram, xs []*tensor.Tensor) error

	// Thresholds runs a calibrator over many histograms at once.
	Thresholds(hs []*calib.Histogram, opt calib.Options) ([]calib.Result, error)
}
