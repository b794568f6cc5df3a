//go:build !amd64 || purego

package quant

// Without the amd64 kernels every path is the Go one; these are never called.

const hasAVX2 = false

func bf16ToF32AVX2(dst *float32, src *uint16, n int)             { panic("quant: no AVX2") }
func f16ToF32AVX2(dst *float32, src *uint16, n int)              { panic("quant: no AVX2") }
func minMaxKeysAVX2(lo, hi *int32, row *float32, groups, gs int) { panic("quant: no AVX2") }
func errorAddAVX2(acc *errorSums, ref, got *float32, n int)      { panic("quant: no AVX2") }
func axpyAVX2(a float64, x, y *float64, n int)                   { panic("quant: no AVX2") }
func quantRowAVX2(dst *byte, deq, row, scales *float32, zeros *int32, groups, gs int, lo, hi float32, mode int) bool {
	panic("quant: no AVX2")
}
