//go:build cuda

package cgo

// #include "autoq.h"
// int autoq_quantize_set_variant(int v); /* cuda/quantize.cu */
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
)

// QuantizeVariant is the dispatch switch of the weight quantization kernel (cuda/quantize.cu):
// 1 is quantize_vec_kernel (the kernel of the first H100 run), 2 quantize_rows_kernel (2D
// grid, one row per grid row, two 16-byte loads in flight per thread, no 64-bit index
// division). Both give the same bits (TestQuantizeVariantsMatchCPU). Variant 2 has not run on
// a GPU yet: set this to 2 when `autoq bench kernels` shows its "[v2]" rows faster.
const QuantizeVariant = 1

func init() {
	// The C side starts at 1; make the Go constant the one switch.
	_ = C.autoq_quantize_set_variant(C.int(QuantizeVariant))
}

// setQuantizeVariant makes every later quantize launch of the process use variant v.
func setQuantizeVariant(v int) error {
	return call(func() C.int { return C.autoq_quantize_set_variant(C.int(v)) })
}

// KernelVariants lists op's selectable kernel variants other than the default
// (bench.KernelVariants: `autoq bench kernels` times them side by side).
func (b *Backend) KernelVariants(op string) []int {
	if op == backend.KernelQuantize {
		return []int{2}
	}
	return nil
}

// UseKernelVariant makes op run variant v from now on (0: the default, QuantizeVariant).
func (b *Backend) UseKernelVariant(op string, v int) error {
	if op != backend.KernelQuantize {
		return fmt.Errorf("cuda: kernel %q has no variants", op)
	}
	if v == 0 {
		v = QuantizeVariant
	}
	return setQuantizeVariant(v)
}
