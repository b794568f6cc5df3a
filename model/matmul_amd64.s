//go:build amd64 && !purego

#include "textflag.h"

// ROW4x16 adds one k's products for one x row: x[k] (at row(AX)) broadcast, times the
// panel's 16 weights in Y8:Y9, each product rounded, then added to the row's two sums.
#define ROW4x16(row, acc0, acc1) \
	VBROADCASTSS (row)(AX*1), Y10; \
	VMULPS       Y8, Y10, Y11;     \
	VMULPS       Y9, Y10, Y12;     \
	VADDPS       Y11, acc0, acc0;  \
	VADDPS       Y12, acc1, acc1

// func gemm4x16AVX2(out *float32, ldo int, x *float32, ldx int, p *float32, k int)
//
// out[r, j] = sum over kk < k of x[r, kk] * p[kk*16 + j], r < 4, j < 16, where p is a
// panel of 16 weight rows packed k-major (matmul_simd.go). Each of the 64 lanes is one
// output's sum: a product rounded to float32 (VMULPS), then added to the running sum
// (VADDPS), kk in increasing order: the scalar matmulTile's arithmetic exactly, so the
// bits are the same. No FMA for that reason. ldo and ldx are row strides in elements.
TEXT ·gemm4x16AVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ ldo+8(FP), R8
	MOVQ x+16(FP), R10
	MOVQ ldx+24(FP), R9
	MOVQ p+32(FP), DX
	MOVQ k+40(FP), CX
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (R10)(R9*1), R11
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*1), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
	TESTQ CX, CX
	JZ store

loop:
	VMOVUPS (DX), Y8
	VMOVUPS 32(DX), Y9
	ROW4x16(R10, Y0, Y1)
	ROW4x16(R11, Y2, Y3)
	ROW4x16(R12, Y4, Y5)
	ROW4x16(R13, Y6, Y7)
	ADDQ $64, DX
	ADDQ $4, AX
	DECQ CX
	JNZ loop

store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ R8, DI
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ R8, DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ R8, DI
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	VZEROUPPER
	RET
