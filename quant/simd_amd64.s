//go:build amd64 && !purego

#include "textflag.h"

// AVX2 kernels of the one-pass RTN path (simd.go has the contract of each and the Go
// twins they must match bit for bit). Operand order is Go's: sources first, destination
// last (VSUBPS b, a, d is d = a - b).

// Macros of the kernels below, each written out once; they are defined ahead of every
// TEXT so that vet's frame check (asmdecl) does not read their argument names as the
// preceding function's.

// The half-precision conversions share their frame (dst *float32, src *uint16, n int;
// n a multiple of 8) and their walk: 8 halves (16 bytes) in, 8 float32s (32 bytes) out.
// HALVES_ARGS loads DI = dst, SI = src, CX = n/8; HALVES_NEXT(loop) steps to the next 8.
#define HALVES_ARGS \
	MOVQ dst+0(FP), DI; \
	MOVQ src+8(FP), SI; \
	MOVQ n+16(FP), CX; \
	SHRQ $3, CX

#define HALVES_NEXT(loop) \
	ADDQ $16, SI; \
	ADDQ $32, DI; \
	DECQ CX; \
	JNZ  loop

// REDUCE8(op, y, x, dst) folds the 8 int32 lanes of y (x: its low half) with op (VPMINSD,
// VPMAXSD) and stores the result at dst; X4 is scratch.
#define REDUCE8(op, y, x, dst) \
	VEXTRACTI128 $1, y, X4; \
	op           X4, x, x; \
	VPSHUFD      $0x4e, x, X4; \
	op           X4, x, x; \
	VPSHUFD      $0xb1, x, X4; \
	op           X4, x, x; \
	VMOVD        x, dst

// NONFINITE(y) ORs into Y6 the lanes of y that are NaN or Inf (every exponent bit set,
// Y7 the exponent mask); Y4 is scratch.
#define NONFINITE(y) \
	VPAND    Y7, y, Y4; \
	VPCMPEQD Y7, Y4, Y4; \
	VPOR     Y4, Y6, Y6

// EACH4(op, a) is op a, Yi, Yi for the four registers of values Y0-Y3.
#define EACH4(op, a) \
	op a, Y0, Y0; \
	op a, Y1, Y1; \
	op a, Y2, Y2; \
	op a, Y3, Y3

// DEQUANT(y, t, off) stores (y - zero) * scale (Y9, Y8) at off(R9), through t.
#define DEQUANT(y, t, off) \
	VSUBPS  Y9, y, t; \
	VMULPS  Y8, t, t; \
	VMOVUPS t, off(R9)

// ERROR_LANES(off, sig, noise, gg, dot, amax) adds 4 elements, ref and got at off(SI)
// and off(DX) widened to float64 (a in Y11, b in Y12, d = b - a in Y13), to their lanes of
// the sums: sig += a*a, noise += d*d, gg += b*b, dot += a*b, each product rounded first;
// amax = max(|d|, amax) (Y10 the abs mask; Y14 scratch).
#define ERROR_LANES(off, sig, noise, gg, dot, amax) \
	VCVTPS2PD off(SI), Y11; \
	VCVTPS2PD off(DX), Y12; \
	VSUBPD    Y11, Y12, Y13; \
	VMULPD    Y11, Y11, Y14; \
	VADDPD    Y14, sig, sig; \
	VMULPD    Y13, Y13, Y14; \
	VADDPD    Y14, noise, noise; \
	VMULPD    Y12, Y12, Y14; \
	VADDPD    Y14, gg, gg; \
	VMULPD    Y12, Y11, Y14; \
	VADDPD    Y14, dot, dot; \
	VANDPD    Y10, Y13, Y13; \
	VMAXPD    amax, Y13, amax

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// func bf16ToF32AVX2(dst *float32, src *uint16, n int)
// Each BF16 is the top half of its float32.
TEXT ·bf16ToF32AVX2(SB), NOSPLIT, $0-24
	HALVES_ARGS
	JZ bf16done
bf16loop:
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)
	HALVES_NEXT(bf16loop)
bf16done:
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, src *uint16, n int)
// F16C's exact half to single conversion.
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	HALVES_ARGS
	JZ f16done
f16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	HALVES_NEXT(f16loop)
f16done:
	VZEROUPPER
	RET

// func minMaxKeysAVX2(lo, hi *int32, row *float32, groups, gs int)
// For each group of gs (a multiple of 8) values: the min and max of floatKey(x), the
// int32 whose signed order is the float order with -0 < +0.
TEXT ·minMaxKeysAVX2(SB), NOSPLIT, $0-40
	MOVQ lo+0(FP), DI
	MOVQ hi+8(FP), DX
	MOVQ row+16(FP), SI
	MOVQ groups+24(FP), BX
	MOVQ gs+32(FP), R8
	SHRQ $3, R8
	TESTQ BX, BX
	JZ   mmdone
mmgroup:
	// The first 8 keys start both extremes.
	VMOVDQU (SI), Y0
	VPSRAD  $31, Y0, Y1
	VPSRLD  $1, Y1, Y1
	VPXOR   Y1, Y0, Y2
	VMOVDQA Y2, Y3
	ADDQ    $32, SI
	MOVQ    R8, CX
	DECQ    CX
	JZ      mmreduce
mmloop:
	VMOVDQU (SI), Y0
	VPSRAD  $31, Y0, Y1
	VPSRLD  $1, Y1, Y1
	VPXOR   Y1, Y0, Y0
	VPMINSD Y0, Y2, Y2
	VPMAXSD Y0, Y3, Y3
	ADDQ    $32, SI
	DECQ    CX
	JNZ     mmloop
mmreduce:
	REDUCE8(VPMINSD, Y2, X2, (DI))
	REDUCE8(VPMAXSD, Y3, X3, (DX))
	ADDQ         $4, DI
	ADDQ         $4, DX
	DECQ         BX
	JNZ          mmgroup
mmdone:
	VZEROUPPER
	RET

// Dword order that puts the bytes of VPACKSSDW/VPACKSSWB (which interleave the two
// 128-bit lanes) back into element order.
DATA packPerm<>+0(SB)/4, $0
DATA packPerm<>+4(SB)/4, $4
DATA packPerm<>+8(SB)/4, $1
DATA packPerm<>+12(SB)/4, $5
DATA packPerm<>+16(SB)/4, $2
DATA packPerm<>+20(SB)/4, $6
DATA packPerm<>+24(SB)/4, $3
DATA packPerm<>+28(SB)/4, $7
GLOBL packPerm<>(SB), RODATA|NOPTR, $32

// The even bytes of each 128-bit lane, in order, into its low 8 bytes.
DATA evenBytes<>+0(SB)/8, $0x0e0c0a0806040200
DATA evenBytes<>+8(SB)/8, $0x8080808080808080
DATA evenBytes<>+16(SB)/8, $0x0e0c0a0806040200
DATA evenBytes<>+24(SB)/8, $0x8080808080808080
GLOBL evenBytes<>(SB), RODATA|NOPTR, $32

DATA nibbleMask<>+0(SB)/4, $0x0f0f0f0f
GLOBL nibbleMask<>(SB), RODATA|NOPTR, $4

DATA expMask<>+0(SB)/4, $0x7f800000
GLOBL expMask<>(SB), RODATA|NOPTR, $4

// func quantRowAVX2(dst *byte, deq, row, scales *float32, zeros *int32, groups, gs int, lo, hi float32, mode int) (bad bool)
//
// Quantizes groups groups of gs values (gs a multiple of 32) of row: level =
// min(max(round_even(x/scale) + zero, lo), hi), deq = (level - zero) * scale, the levels
// packed into dst (mode bit 0: 4-bit nibbles, element 2i low; else bytes), mode bit 1:
// asymmetric (zeros read; unsigned saturation when packing), else zeros is not read and
// the zero point is +0. bad is true when some x is NaN or Inf (dst and deq are then
// unspecified).
//
// Registers: Y0-Y3 32 values, Y4-Y5 scratch, Y6 non-finite accumulator, Y7 exponent mask,
// Y8 scale, Y9 zero, Y10 lo, Y11 hi, Y12 packPerm, Y13 nibble mask, Y14 evenBytes.
TEXT ·quantRowAVX2(SB), NOSPLIT, $0-73
	MOVQ dst+0(FP), DI
	MOVQ deq+8(FP), R9
	MOVQ row+16(FP), SI
	MOVQ scales+24(FP), R10
	MOVQ zeros+32(FP), R11
	MOVQ groups+40(FP), BX
	MOVQ gs+48(FP), R8
	MOVQ mode+64(FP), R12
	SHRQ $5, R8
	VBROADCASTSS lo+56(FP), Y10
	VBROADCASTSS hi+60(FP), Y11
	VMOVDQU      packPerm<>(SB), Y12
	VPBROADCASTD nibbleMask<>(SB), Y13
	VMOVDQU      evenBytes<>(SB), Y14
	VPBROADCASTD expMask<>(SB), Y7
	VPXOR        Y6, Y6, Y6
	VXORPS       Y9, Y9, Y9
	TESTQ        BX, BX
	JZ           qdone

qgroup:
	VBROADCASTSS (R10), Y8
	ADDQ         $4, R10
	BTQ          $1, R12
	JCC          qzero
	VPBROADCASTD (R11), Y9
	VCVTDQ2PS    Y9, Y9
	ADDQ         $4, R11
qzero:
	MOVQ R8, CX

qloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3

	NONFINITE(Y0)
	NONFINITE(Y1)
	NONFINITE(Y2)
	NONFINITE(Y3)

	// level = min(max(round_even(x/scale) + zero, lo), hi), op by op on Y0-Y3.
	EACH4(VDIVPS, Y8)
	EACH4(VROUNDPS, $0)
	EACH4(VADDPS, Y9)
	EACH4(VMAXPS, Y10)
	EACH4(VMINPS, Y11)

	DEQUANT(Y0, Y4, 0)
	DEQUANT(Y1, Y5, 32)
	DEQUANT(Y2, Y4, 64)
	DEQUANT(Y3, Y5, 96)

	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	BTQ       $1, R12
	JCS       qunsigned
	VPACKSSWB Y2, Y0, Y0
	JMP       qpacked
qunsigned:
	VPACKUSWB Y2, Y0, Y0
qpacked:
	VPERMD Y0, Y12, Y0
	BTQ    $0, R12
	JCS    qnibbles
	VMOVDQU Y0, (DI)
	ADDQ    $32, DI
	JMP     qnext
qnibbles:
	// Bytes b[2i], b[2i+1] as word w: (w & 0x0f0f) | (w & 0x0f0f) >> 4 has
	// b[2i] | b[2i+1] << 4 in its low byte.
	VPAND   Y13, Y0, Y0
	VPSRLW  $4, Y0, Y4
	VPOR    Y4, Y0, Y0
	VPSHUFB Y14, Y0, Y0
	VPERMQ  $0x08, Y0, Y0
	VMOVDQU X0, (DI)
	ADDQ    $16, DI
qnext:
	ADDQ $128, SI
	ADDQ $128, R9
	DECQ CX
	JNZ  qloop
	DECQ BX
	JNZ  qgroup

qdone:
	VPTEST Y6, Y6
	SETNE  bad+72(FP)
	VZEROUPPER
	RET

DATA absMask<>+0(SB)/8, $0x7fffffffffffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $8

// func errorAddAVX2(acc *errorLanes, ref, got *float32, n int)
//
// acc holds sig, noise, gg, dot and amax, 8 float64 lanes each; element i (n a multiple
// of 8) goes to lane i%8: a = ref[i], b = got[i], d = b - a in float64; sig += a*a,
// noise += d*d, gg += b*b, dot += a*b, each product rounded before the sum (no FMA);
// amax = |d| when |d| > amax (a NaN never replaces it).
TEXT ·errorAddAVX2(SB), NOSPLIT, $0-32
	MOVQ acc+0(FP), DI
	MOVQ ref+8(FP), SI
	MOVQ got+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   eadone
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	VMOVUPD 128(DI), Y4
	VMOVUPD 160(DI), Y5
	VMOVUPD 192(DI), Y6
	VMOVUPD 224(DI), Y7
	VMOVUPD 256(DI), Y8
	VMOVUPD 288(DI), Y9
	VBROADCASTSD absMask<>(SB), Y10
ealoop:
	ERROR_LANES(0, Y0, Y2, Y4, Y6, Y8)  // lanes 0-3
	ERROR_LANES(16, Y1, Y3, Y5, Y7, Y9) // lanes 4-7
	ADDQ      $32, SI
	ADDQ      $32, DX
	DECQ      CX
	JNZ       ealoop
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VMOVUPD Y4, 128(DI)
	VMOVUPD Y5, 160(DI)
	VMOVUPD Y6, 192(DI)
	VMOVUPD Y7, 224(DI)
	VMOVUPD Y8, 256(DI)
	VMOVUPD Y9, 288(DI)
eadone:
	VZEROUPPER
	RET

// func axpyAVX2(a float64, x, y *float64, n int)
// y[i] += a*x[i] for i < n, n a multiple of 8: the product is rounded, then added (no FMA).
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSD a+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   axdone
axloop:
	VMULPD  (SI), Y0, Y1
	VMULPD  32(SI), Y0, Y2
	VADDPD  (DI), Y1, Y1
	VADDPD  32(DI), Y2, Y2
	VMOVUPD Y1, (DI)
	VMOVUPD Y2, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     axloop
axdone:
	VZEROUPPER
	RET
