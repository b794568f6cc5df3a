package backend

import (
	"fmt"
	"runtime"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// CPU is the pure-Go reference backend: every method delegates to package quant or calib.
// The CUDA backend falls back to it for whatever it does not accelerate.
type CPU struct{}

// NewCPU returns the pure-Go reference backend.
func NewCPU() Backend { return CPU{} }

// Info describes the host.
func (CPU) Info() DeviceInfo {
	return DeviceInfo{Kind: "cpu", Name: fmt.Sprintf("%s/%s CPU", runtime.GOOS, runtime.GOARCH), SMs: runtime.NumCPU()}
}

// Close does nothing.
func (CPU) Close() error { return nil }

// WeightMatrix checks that w is a 2-D F32/F16/BF16 matrix and returns its float32 values
// (a view for F32) with rows and cols.
func WeightMatrix(name string, w *tensor.Tensor) (vals []float32, rows, cols int, err error) {
	if w == nil {
		return nil, 0, 0, fmt.Errorf("tensor %q: nil tensor", name)
	}
	if len(w.Shape) != 2 {
		return nil, 0, 0, fmt.Errorf("tensor %q: weight must be 2-D [out, in], got shape %v", name, w.Shape)
	}
	if !w.DType.IsFloat() {
		return nil, 0, 0, fmt.Errorf("tensor %q: weight dtype %s is not F32, F16 or BF16", name, w.DType)
	}
	if want := tensor.ByteSize(w.DType, w.Shape); len(w.Data) != want {
		return nil, 0, 0, fmt.Errorf("tensor %q: %d data bytes for %s%v (want %d)", name, len(w.Data), w.DType, w.Shape, want)
	}
	return w.ToF32(), w.Shape[0], w.Shape[1], nil
}

// GroupRanges is quant.GroupRangesTensor: F16/BF16 weights are converted a row at a time.
func (CPU) GroupRanges(name string, w *tensor.Tensor, s quant.Scheme) (lo, hi []float32, err error) {
	return quant.GroupRangesTensor(name, w, s)
}

// SearchParams is quant.SearchParamsTensor (quant.SearchParams on w's values, without a
// float32 copy of the whole weight where the search is row-local).
func (CPU) SearchParams(name string, w *tensor.Tensor, s quant.Scheme, opt quant.SearchOptions) ([]float32, []int32, error) {
	return quant.SearchParamsTensor(name, w, s, opt)
}

// Quantize is quant.QuantizeTensorWithParams (quant.QuantizeWithParams on w's values, a
// row at a time).
func (CPU) Quantize(name string, w *tensor.Tensor, s quant.Scheme, scales []float32, zeros []int32) (*quant.QTensor, error) {
	return quant.QuantizeTensorWithParams(name, w, s, scales, zeros)
}

// Dequantize is quant.Dequantize, as a [Rows, Cols] F32 tensor.
func (CPU) Dequantize(q *quant.QTensor) (*tensor.Tensor, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return tensor.FromF32(quant.Dequantize(q), q.Rows, q.Cols), nil
}

// CheckHistogramInputs validates a HistogramAdd call: equal lengths, non-nil histograms,
// float tensors whose data matches their shape, and (for histograms that track per-channel
// absmax) a channel count that matches the histogram's.
func CheckHistogramInputs(hs []*calib.Histogram, xs []*tensor.Tensor) error {
	if len(hs) != len(xs) {
		return fmt.Errorf("histogram add: %d histograms for %d tensors", len(hs), len(xs))
	}
	for i, x := range xs {
		if hs[i] == nil {
			return fmt.Errorf("histogram add: histogram %d is nil", i)
		}
		name := hs[i].Name
		if x == nil {
			return fmt.Errorf("histogram add: tensor %q: nil tensor", name)
		}
		if !x.DType.IsFloat() {
			return fmt.Errorf("histogram add: tensor %q: dtype %s is not F32, F16 or BF16", name, x.DType)
		}
		if want := tensor.ByteSize(x.DType, x.Shape); len(x.Data) != want {
			return fmt.Errorf("histogram add: tensor %q: %d data bytes for %s%v (want %d)", name, len(x.Data), x.DType, x.Shape, want)
		}
		if cm := hs[i].ChannelAbsMax; cm != nil && x.NumElements() > 0 && len(cm) != x.Cols() {
			return fmt.Errorf("histogram add: tensor %q: %d channels, histogram tracks %d", name, x.Cols(), len(cm))
		}
	}
	return nil
}

// HistogramAdd adds each xs[i] to hs[i] (calib.AddTensor: AddF32/AddF16/AddBF16 by dtype)
// and, for histograms whose ChannelAbsMax is non-nil, folds in the per-channel absmax
// (channels = the last dimension).
func (CPU) HistogramAdd(hs []*calib.Histogram, xs []*tensor.Tensor) error {
	if err := CheckHistogramInputs(hs, xs); err != nil {
		return err
	}
	for i, x := range xs {
		h := hs[i]
		if err := calib.AddTensor(h, x); err != nil {
			return err
		}
		if h.ChannelAbsMax != nil && x.NumElements() > 0 {
			h.AddChannelAbsMax(x.ToF32(), x.Cols())
		}
	}
	return nil
}

// Thresholds runs calib.Compute on each histogram.
func (CPU) Thresholds(hs []*calib.Histogram, opt calib.Options) ([]calib.Result, error) {
	out := make([]calib.Result, len(hs))
	for i, h := range hs {
		if h == nil {
			return nil, fmt.Errorf("thresholds: histogram %d is nil", i)
		}
		r, err := calib.Compute(h, opt)
		if err != nil {
			return nil, fmt.Errorf("thresholds: histogram %q: %w", h.Name, err)
		}
		out[i] = r
	}
	return out, nil
}
