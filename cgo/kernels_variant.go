//go:build cuda

package cgo

// #include "autoq.h"
// int autoq_quantize_set_variant(int v); /* cuda/quantize.cu */
import "C"

import (
	"fmt"
	"sync/atomic"

	"github.com/autoq/autoq/backend"
)

// QuantizeVariant is the dispatch switch of the weight quantization kernel (cuda/quantize.cu):
// 1 is quantize_vec_kernel (the kernel of the first H100 run), 2 quantize_rows_kernel (2D
// grid, one row per grid row, two 16-byte loads in flight per thread, no 64-bit index
// division), 3 quantize_v3_kernel (cuda/quantize_v3.cu: persistent grid with equal
// contiguous shares, the next 4 loads in flight while quantizing, no flag memset on the
// default stream). All give the same bits (TestQuantizeVariantsMatchCPU). Second H100 run:
// v2 52-61% of peak vs v1 49-54% for symmetric schemes. Third run (all three side by side):
// on the 11008x4096 shapes v3 is fastest (0.062-0.071 ms, 49-63% of peak, against v2's
// 0.066-0.075), on 4096x4096 v2 leads v3 by 1-2 us; summed over the six rows v3 takes
// 0.291 ms and v2 0.297 ms, so v3.
const QuantizeVariant = 3

// HistogramVariant is the dispatch switch of the calibration histogram: 1 is histogram.cu's
// two passes (absmax, then bins), 2 histogram_v2.cu's single pass over F16/BF16 inputs (a
// 2^15-pattern histogram per block, then exact bins; batches holding F32 tensors, and
// devices without 128 KB of shared memory per block, still take variant 1). Same counts
// (TestHistogramVariantsMatchCPU). Third H100 run: 2^28 F16 values in 0.501 ms (v2) against
// 0.690 ms (v1), so v2.
const HistogramVariant = 2

// histogramVariant is the variant HistBatch.Launch uses (UseKernelVariant changes it).
var histogramVariant atomic.Int32

func init() {
	// The C side starts at 1; make the Go constant the one switch.
	_ = C.autoq_quantize_set_variant(C.int(QuantizeVariant))
	histogramVariant.Store(HistogramVariant)
}

// setQuantizeVariant makes every later quantize launch of the process use variant v.
func setQuantizeVariant(v int) error {
	return call(func() C.int { return C.autoq_quantize_set_variant(C.int(v)) })
}

// KernelVariants lists op's selectable kernel variants other than the default
// (bench.KernelVariants: `autoq bench kernels` times them side by side).
func (b *Backend) KernelVariants(op string) []int {
	var all []int
	switch op {
	case backend.KernelQuantize:
		all = []int{1, 2, 3}
	case backend.KernelHistogram:
		all = []int{1, 2}
	}
	var out []int
	for _, v := range all {
		if v != defaultVariant(op) {
			out = append(out, v)
		}
	}
	return out
}

func defaultVariant(op string) int {
	if op == backend.KernelHistogram {
		return HistogramVariant
	}
	return QuantizeVariant
}

// UseKernelVariant makes op run variant v from now on (0: the default).
func (b *Backend) UseKernelVariant(op string, v int) error {
	if v == 0 {
		v = defaultVariant(op)
	}
	switch op {
	case backend.KernelQuantize:
		return setQuantizeVariant(v)
	case backend.KernelHistogram:
		if v != 1 && v != 2 {
			return fmt.Errorf("cuda: histogram has no variant %d (have 1, 2)", v)
		}
		histogramVariant.Store(int32(v))
		return nil
	}
	return fmt.Errorf("cuda: kernel %q has no variants", op)
}
