package gpurunner

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/autoq/autoq/quant"
)

// Which layers the kernels take, and why the others fall back to cuBLAS on dequantized
// weights.
func TestKernelReason(t *testing.T) {
	w8 := &quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, Act: quant.ActDynamic}
	w4 := &quant.Recipe{Weight: quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 128}}
	assert.Empty(t, kernelReason("l", 64, 128, w8, false))
	assert.Empty(t, kernelReason("l", 128, 256, w4, false))
	assert.Equal(t, "kernels disabled", kernelReason("l", 64, 128, w8, true))
	assert.Contains(t, kernelReason("l", 60, 128, w8, false), "N % 8 == 0")
	w8g := &quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, Act: quant.ActDynamic}
	assert.Contains(t, kernelReason("l", 64, 128, w8g, false), "per-channel or per-tensor")
	assert.Contains(t, kernelReason("l", 96, 256, w4, false), "multiples of 64")
	w8only := &quant.Recipe{Weight: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}}
	assert.Contains(t, kernelReason("l", 64, 128, w8only, false), "no kernel for weight-only")
	// The other widths always take the dequantized fallback, whatever the shape.
	for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
		if bits == 4 {
			continue
		}
		for _, s := range []quant.Scheme{{Bits: bits, Granularity: quant.PerGroup, GroupSize: 128}, {Bits: bits, Symmetric: true, Granularity: quant.PerChannel}} {
			c := &quant.Recipe{Weight: s}
			assert.Equal(t, "no kernel for weight-only "+s.String()+" (the W4A16 kernels take 4-bit weights only)", kernelReason("l", 128, 256, c, false))
		}
	}
}

// The summary counts layers per path, paths sorted.
func TestKernelSummary(t *testing.T) {
	got := KernelSummary(map[string]string{"a": "w8a8", "b": "w8a8", "c": "cublas-f16", "d": "fallback-f16 (x)"})
	assert.Equal(t, "cublas-f16: 1; fallback-f16 (x): 1; w8a8: 2", got)
	assert.Empty(t, KernelSummary(nil))
}
