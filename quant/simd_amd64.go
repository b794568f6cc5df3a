//go:build amd64 && !purego

package quant

// Declarations of the AVX2 kernels in simd_amd64.s (simd.go has their contracts).

//go:noescape
func bf16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func minMaxKeysAVX2(lo, hi *int32, row *float32, groups, gs int)

//go:noescape
func quantRowAVX2(dst *byte, deq, row, scales *float32, zeros *int32, groups, gs int, lo, hi float32, mode int) (bad bool)

//go:noescape
func errorAddAVX2(acc *errorSums, ref, got *float32, n int)

//go:noescape
func axpyAVX2(a float64, x, y *float64, n int)

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax, edx uint32)

// hasAVX2 reports whether the CPU and the OS support what the kernels use: AVX and AVX2
// (CPUID leaf 7 EBX bit 5), F16C (leaf 1 ECX bit 29), with the YMM state saved by the OS
// (OSXSAVE, and XCR0 bits 1 and 2).
var hasAVX2 = func() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const osxsave, avx, f16c = 1 << 27, 1 << 28, 1 << 29
	if c1&(osxsave|avx|f16c) != osxsave|avx|f16c {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}()
