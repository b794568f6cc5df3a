//go:build cuda

package cgo

// #include "autoq_gemm.h"
import "C"

import "fmt"

// W4A16Weight is a 4-bit weight resident on the device in the tiled layout
// (layout.PackW4A16Tiled), which every W4A16 kernel but the strip kernel reads.
type W4A16Weight struct {
	Data, Scales, Zeros *Buffer // Zeros nil when symmetric
	N, K, Group         int
}

// W4A16WorkspaceBytes is the workspace W4A16 kernel k needs at (M, N, K) on device dev (the
// split-K or stripe counters and partials; 0 for the strip kernel and dequantize + cuBLAS).
func W4A16WorkspaceBytes(k Kernel, dev, M, N, K int) int {
	switch k {
	case TiledLastBlock, TiledReduceKernel:
		return W4A16TiledWorkspaceBytes(dev, M, N, K)
	case SwappedStripes:
		return int(C.autoq_gemm_w4a16_swapped_workspace_bytes(C.int(dev)))
	case MMAStripes:
		return int(C.autoq_gemm_w4a16_mma_workspace_bytes(C.int(dev), C.int64_t(M)))
	}
	return 0
}

// W4A16ScratchBytes is the F16 scratch kernel k needs for an [N, K] weight (DequantCublas:
// the dequantized weight; the others none).
func W4A16ScratchBytes(k Kernel, N, K int) int {
	if k == DequantCublas {
		return 2 * N * K
	}
	return 0
}

// W4A16Dev writes out (F16 [M, N]) = a (F16 [M, K]) x w (+ bias, F32 [N] or nil) with W4A16
// kernel k on a tiled-layout weight: the tiled kernels, the stripe kernels (workspace ws) or
// dequantize + cuBLAS (scratch of W4A16ScratchBytes). W4A16KernelFor picks k.
func W4A16Dev(k Kernel, a *Buffer, w W4A16Weight, bias, out *Buffer, M int, ws *Workspace, scratch *Buffer) error {
	N, K, group := w.N, w.K, w.Group
	switch k {
	case TiledLastBlock, TiledReduceKernel:
		return GemmW4A16TiledDev(k, a, w.Data, w.Scales, w.Zeros, bias, out, M, N, K, group, ws)
	case SwappedStripes, MMAStripes, DequantCublas:
	default:
		return fmt.Errorf("cuda: w4a16 on tiled weights: no kernel %q (have %v)", k, Kernels(OpW4A16Tiled))
	}
	if err := checkW4Bufs(a, w.Data, w.Scales, w.Zeros, out, M, N, K, group, N*K/2); err != nil {
		return err
	}
	if bias != nil {
		if err := checkBufs("gemm w4a16 bias", bias, 4*N); err != nil {
			return err
		}
	}
	if k == DequantCublas {
		if err := checkBufs("gemm w4a16 dequantize scratch", scratch, 2*N*K); err != nil {
			return err
		}
		return call(func() C.int {
			return C.autoq_gemm_w4a16_dequant_cublas(C.int(a.dev), a.ptr, w.Data.ptr, w.Scales.ptr, ptrOrNil(w.Zeros),
				(*C.float)(ptrOrNil(bias)), out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), scratch.ptr,
				C.size_t(scratch.size), nil)
		})
	}
	wsp, wsn, err := ws.Ensure(W4A16WorkspaceBytes(k, ws.dev, M, N, K))
	if err != nil {
		return err
	}
	return call(func() C.int {
		if k == SwappedStripes {
			return C.autoq_gemm_w4a16_swapped(C.int(a.dev), a.ptr, w.Data.ptr, w.Scales.ptr, ptrOrNil(w.Zeros),
				(*C.float)(ptrOrNil(bias)), out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), wsp, C.size_t(wsn), nil)
		}
		return C.autoq_gemm_w4a16_mma(C.int(a.dev), a.ptr, w.Data.ptr, w.Scales.ptr, ptrOrNil(w.Zeros),
			(*C.float)(ptrOrNil(bias)), out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), wsp, C.size_t(wsn), nil)
	})
}

// W4A16DequantDev writes the tiled-layout weight w dequantized (F16 [N, K] row-major, the
// kernels' f16(f16(u - z) * scale)) into out.
func W4A16DequantDev(w W4A16Weight, out *Buffer) error {
	if err := checkBufs("w4a16 dequantize", w.Data, w.N*w.K/2, out, 2*w.N*w.K); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_w4a16_dequant_tiled(C.int(w.Data.dev), w.Data.ptr, w.Scales.ptr, ptrOrNil(w.Zeros), out.ptr,
			C.int64_t(w.N), C.int64_t(w.K), C.int64_t(w.Group), nil)
	})
}
