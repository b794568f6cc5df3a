package gpurunner

// Which path runs each linear layer. No build tag: tested on every machine.

import (
	"fmt"
	"maps"
	"slices"

	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
)

// kernelReason returns "" when a kernel runs the layer, else why the F16 fallback does.
func kernelReason(name string, N, K int, sch *quant.Recipe, noKernels bool) string {
	s := sch.Weight
	switch {
	case noKernels:
		return "kernels disabled"
	case sch.Act == quant.ActDynamic:
		if s.Bits != 8 || !s.Symmetric || s.Granularity == quant.PerGroup {
			return fmt.Sprintf("the W8A8 kernel needs 8-bit symmetric per-channel or per-tensor weights, not %s", s)
		}
		if N%8 != 0 || K%16 != 0 {
			return fmt.Sprintf("the W8A8 kernel needs N %% 8 == 0 and K %% 16 == 0; shape [%d, %d]", N, K)
		}
		return ""
	case s.Bits == 4:
		group := K
		if s.Granularity == quant.PerGroup {
			group = s.GroupSize
		}
		if err := layout.CheckW4A16Shape(name, N, K, group); err != nil {
			return err.Error()
		}
		return ""
	}
	// 8-bit weight-only layers and the 3-, 5-, 6- and 7-bit widths have no GEMM kernel: the
	// runner multiplies their dequantized weights (F16) with cuBLAS.
	return fmt.Sprintf("no kernel for weight-only %s (the W4A16 kernels take 4-bit weights only)", s)
}

// KernelSummary counts layers per path, sorted by path ("w8a8: 20, fallback-f16 (...): 15").
func KernelSummary(k map[string]string) string {
	counts := map[string]int{}
	for _, v := range k {
		counts[v]++
	}
	s := ""
	for i, v := range slices.Sorted(maps.Keys(counts)) {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s: %d", v, counts[v])
	}
	return s
}
