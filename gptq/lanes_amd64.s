//go:build amd64 && !purego

#include "textflag.h"

// func dotLanes16AVX2(h *float64, e *float64, n int, out *float64)
//
// out[c] = sum over j < n of h[j] * e[j*16+c], c < 16: sixteen dot products of one h
// against sixteen interleaved vectors, each a rounded product (VMULPD) added to its running
// sum (VADDPD) in increasing j, which is dot's arithmetic: each lane has dot's bits. No FMA
// for that reason.
TEXT ·dotLanes16AVX2(SB), NOSPLIT, $0-32
	MOVQ h+0(FP), SI
	MOVQ e+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), DI
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	TESTQ CX, CX
	JZ done

loop:
	VBROADCASTSD (SI), Y4
	VMULPD (DX), Y4, Y5
	VMULPD 32(DX), Y4, Y6
	VMULPD 64(DX), Y4, Y7
	VMULPD 96(DX), Y4, Y8
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	VADDPD Y7, Y2, Y2
	VADDPD Y8, Y3, Y3
	ADDQ $8, SI
	ADDQ $128, DX
	DECQ CX
	JNZ loop

done:
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET
