package backend

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Kernel operations that `autoq bench kernels` times.
const (
	KernelScales     = "scales"     // per-group ranges + ComputeParams (the max search)
	KernelQuantize   = "quantize"   // QuantizeWithParams with given scales
	KernelMSESearch  = "mse-search" // the MSE clipping search
	KernelHistogram  = "histogram"  // HistogramAdd of many tensors (one launch on a GPU)
	KernelThresholds = "thresholds" // Thresholds over many histograms
	KernelCopy       = "copy"       // device-to-device copy: the measured bandwidth ceiling
)

// KernelCase is one benchmark case. Weight cases use W (2-D) and Scheme; histogram cases
// use Xs; threshold cases use Hists and Method; copy uses Bytes.
type KernelCase struct {
	Op     string
	W      *tensor.Tensor
	Scheme quant.Scheme
	Xs     []*tensor.Tensor
	Hists  []*calib.Histogram
	Method calib.Method
	Bytes  int
	// Copies (weight cases) is how many copies of W successive executions rotate through,
	// so that a device does not serve them from its cache (0 or 1: one copy).
	Copies int
}

// KernelTimer is implemented by backends that can time one kernel case in isolation:
// PrepareKernel puts the inputs where the kernel reads them (device memory on a GPU) and
// returns run, which executes the case reps times back to back and returns their total time
// in milliseconds (one pair of device events around them on a GPU, the wall clock on the
// CPU), and cleanup. How many reps to time is package bench's choice.
type KernelTimer interface {
	PrepareKernel(c KernelCase) (run func(reps int) (float64, error), cleanup func(), err error)
}

// PrepareKernel times the CPU reference with the wall clock. Inputs are converted once up
// front so that runs measure the arithmetic, as on the GPU.
func (c CPU) PrepareKernel(k KernelCase) (func(int) (float64, error), func(), error) {
	timed := func(f func() error) func(int) (float64, error) {
		return func(reps int) (float64, error) {
			t0 := time.Now()
			for range reps {
				if err := f(); err != nil {
					return 0, err
				}
			}
			return float64(time.Since(t0).Nanoseconds()) / 1e6, nil
		}
	}
	nop := func() {}
	switch k.Op {
	case KernelScales, KernelMSESearch, KernelQuantize:
		v, rows, cols, err := WeightMatrix("bench", k.W)
		if err != nil {
			return nil, nil, err
		}
		switch k.Op {
		case KernelScales:
			return timed(func() error {
				_, _, err := quant.SearchParams("bench", v, rows, cols, k.Scheme, quant.SearchOptions{Method: quant.SearchMax})
				return err
			}), nop, nil
		case KernelMSESearch:
			return timed(func() error {
				_, _, err := quant.SearchParams("bench", v, rows, cols, k.Scheme, quant.SearchOptions{Method: quant.SearchMSE})
				return err
			}), nop, nil
		}
		scales, zeros, err := quant.SearchParams("bench", v, rows, cols, k.Scheme, quant.SearchOptions{})
		if err != nil {
			return nil, nil, err
		}
		return timed(func() error {
			_, err := quant.QuantizeWithParams("bench", v, rows, cols, k.Scheme, scales, zeros)
			return err
		}), nop, nil
	case KernelHistogram:
		return timed(func() error {
			hs := make([]*calib.Histogram, len(k.Xs))
			for i := range hs {
				hs[i] = calib.NewHistogram(fmt.Sprint(i))
			}
			return c.HistogramAdd(hs, k.Xs)
		}), nop, nil
	case KernelThresholds:
		return timed(func() error {
			_, err := c.Thresholds(k.Hists, calib.DefaultOptions(k.Method))
			return err
		}), nop, nil
	case KernelCopy:
		src, dst := make([]byte, k.Bytes), make([]byte, k.Bytes)
		return timed(func() error { copy(dst, src); return nil }), nop, nil
	}
	return nil, nil, fmt.Errorf("bench: unknown kernel case %q", k.Op)
}
