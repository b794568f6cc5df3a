package quant

import (
	"unsafe"

	"github.com/autoq/autoq/tensor"
)

// The hot loops of the one-pass RTN path (QuantizeTensorWithError) have AVX2 kernels on
// amd64 (simd_amd64.s) beside the Go loops they must match bit for bit:
//
//   - BF16/F16 to float32 (convertRow): BF16 is the top half of a float32; F16C's
//     VCVTPH2PS is exact, like tensor.F16ToF32.
//
//   - group min and max (rowRanges): signed int32 min and max of floatKey, as
//     groupMinMax, so -0 < +0 and NaN/Inf show as extreme keys.
//
//   - levels (quantizeRow, 4 and 8 bits, groups of a multiple of 32 values):
//     VDIVPS is IEEE division lane by lane, VROUNDPS with immediate 0 rounds half to even,
//     then + zero and a clamp, as level(); dequantized values (q-z)*scale; packing by
//     saturating packs (exact: levels lie in QRange).
//
//   - error sums (errorSums.add): float64, in the lane order errorSums defines, products
//     rounded before they are added (no FMA), so the Go loop gives the same bits.
//
//   - Axpy (y += a*x in float64, GPTQ's column updates): VMULPD then VADDPD, the product
//     rounded before the add, as the Go statement y[i] += a*x[i] (no FMA on amd64's
//     baseline).
//
// useSIMD chooses them; it is false where the CPU lacks AVX2, F16C or OS support for
// the YMM registers, on other architectures and under the purego build tag. Tests turn
// it off to compare.
var useSIMD = hasAVX2

// simdLen is how many of n leading elements a streaming kernel (convertRow, errorSums.add,
// Axpy) takes, eight at a time: none without useSIMD; the Go loop does the rest.
func simdLen(n int) int {
	if !useSIMD {
		return 0
	}
	return n &^ 7
}

// convertRow converts half-precision bits to float32 into dst[:len(src)] (BF16 when bf16,
// else F16), as tensor.BF16ToF32Slice and tensor.F16ToF32Slice do.
func convertRow(dst []float32, src []uint16, bf16 bool) []float32 {
	dst = dst[:len(src)]
	n := simdLen(len(src))
	if n > 0 {
		if bf16 {
			bf16ToF32AVX2(&dst[0], &src[0], n)
		} else {
			f16ToF32AVX2(&dst[0], &src[0], n)
		}
	}
	if bf16 {
		tensor.BF16ToF32Slice(dst[n:], src[n:])
	} else {
		tensor.F16ToF32Slice(dst[n:], src[n:])
	}
	return dst
}

// simdMinMax reports whether rowRanges' kernel takes groups of gs values.
func simdMinMax(gs int) bool { return useSIMD && gs > 0 && gs%8 == 0 }

// minMaxKeys writes floatKey's min and max of each of len(lo) groups of gs values of row
// into lo and hi, reinterpreted as int32 (the caller turns them into floats).
func minMaxKeys(lo, hi []float32, row []float32, gs int) (klo, khi []int32) {
	n := len(lo)
	klo = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(lo))), n)
	khi = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(hi))), n)
	if n > 0 {
		_ = row[n*gs-1]
		minMaxKeysAVX2(&klo[0], &khi[0], &row[0], n, gs)
	}
	return klo, khi
}

// simdQuantCols returns how many leading columns of each group the level kernel
// quantizes for layout l under s: the whole group when its size is a multiple of 32, the
// largest multiple of 32 when the row is one group (the rest are the Go loop's), 0 when
// the kernel does not apply (widths other than 4 and 8 bits, other group sizes).
func simdQuantCols(l Layout, s Scheme) int {
	if !useSIMD || (s.Bits != 4 && s.Bits != 8) {
		return 0
	}
	if l.GroupSize%32 == 0 {
		return l.GroupSize
	}
	if l.Groups == 1 {
		return l.GroupSize &^ 31
	}
	return 0
}

// quantGroupsSIMD quantizes the first cols columns (a multiple of 32) of every group of
// row into dst (packed) and deq, with the kernel; false when the row holds a NaN or Inf
// (dst and deq then hold garbage: the caller redoes the row with the Go loop, which
// names the element).
func quantGroupsSIMD(dst []byte, deq, row []float32, l Layout, cols int, s Scheme, scales []float32, zeros []int32, lo, hi float32) bool {
	if cols == 0 || l.Groups == 0 {
		return true
	}
	// Bounds: the kernel reads and writes groups*gs values (with gs = cols when there
	// is one group) and the packed bytes before them.
	span := (l.Groups-1)*l.GroupSize + cols
	_, _, _ = row[span-1], deq[span-1], dst[RowBytes(s.Bits, span)-1]
	_ = scales[l.Groups-1]
	gs := l.GroupSize
	if l.Groups == 1 {
		gs = cols
	}
	mode := 0
	if s.Bits == 4 {
		mode |= 1
	}
	var zp *int32
	if !s.Symmetric {
		mode |= 2
		_ = zeros[l.Groups-1]
		zp = &zeros[0]
	}
	return !quantRowAVX2(&dst[0], &deq[0], &row[0], &scales[0], zp, l.Groups, gs, lo, hi, mode)
}

// Axpy adds a*x[i] to y[i] for i < len(x) (y must be at least as long), rounding the
// product before the sum: the AVX2 kernel and the Go loop give the same bits. It is the
// inner loop of GPTQ's error propagation.
func Axpy(a float64, x, y []float64) {
	y = y[:len(x)]
	n := simdLen(len(x))
	if n > 0 {
		axpyAVX2(a, &x[0], &y[0], n)
	}
	for i := n; i < len(x); i++ {
		y[i] += a * x[i]
	}
}
