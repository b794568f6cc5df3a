//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/autoq/autoq/tensor"
)

// Bindings of the GEMM kernels (cuda/autoq_gemm.h) on device buffers, launched
// asynchronously on the default stream. Each runs the kernel it is given (KernelFor picks
// one from the dispatch table); optional inputs (zeros, bias) may be nil.

// Workspace is the split-K workspace of one device: zeroed when (re)allocated, and the
// kernels leave it zeroed. Calls sharing one must not run at the same time.
type Workspace struct {
	dev int
	buf *Buffer
}

// NewWorkspace returns an empty workspace of device dev (allocated on first need).
func NewWorkspace(dev int) *Workspace { return &Workspace{dev: dev} }

// Ensure makes the workspace at least n bytes and returns its address and size (nil, 0 for
// n == 0 and no buffer yet).
func (w *Workspace) Ensure(n int) (unsafe.Pointer, int, error) {
	if w.buf == nil || w.buf.Size() < n {
		if n == 0 {
			return nil, 0, nil
		}
		if err := w.buf.Close(); err != nil {
			return nil, 0, err
		}
		w.buf = nil
		b, err := Alloc(w.dev, n)
		if err != nil {
			return nil, 0, fmt.Errorf("split-K workspace: %w", err)
		}
		if err := b.Memset(0, n, 0); err != nil {
			b.Close()
			return nil, 0, err
		}
		w.buf = b
	}
	return w.buf.Ptr(), w.buf.Size(), nil
}

// Close frees the workspace.
func (w *Workspace) Close() error {
	if w == nil {
		return nil
	}
	err := w.buf.Close()
	w.buf = nil
	return err
}

// splitK maps a tiled kernel to the C reduction argument.
func splitK(op Op, k Kernel) (C.int, error) {
	switch k {
	case TiledLastBlock:
		return C.AUTOQ_SPLITK_LAST_BLOCK, nil
	case TiledReduceKernel:
		return C.AUTOQ_SPLITK_REDUCE_KERNEL, nil
	}
	return 0, fmt.Errorf("cuda: %s has no tiled kernel %q (have %s, %s)", op, k, TiledLastBlock, TiledReduceKernel)
}

// W8A8WorkspaceBytes is the split-K workspace the W8A8 kernel needs at (M, N, K), either
// reduction.
func W8A8WorkspaceBytes(dev, M, N, K int) int {
	return int(C.autoq_gemm_w8a8_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
}

// W4A16TiledWorkspaceBytes is the split-K workspace of the tiled W4A16 kernel, either
// reduction (the strip kernel needs none).
func W4A16TiledWorkspaceBytes(dev, M, N, K int) int {
	return int(C.autoq_gemm_w4a16_tiled_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
}

// W8A8WgmmaAvailable reports whether the sm_90a W8A8 kernel (WgmmaTMA) is built into the
// library and device dev can run it (compute capability 9.0).
func W8A8WgmmaAvailable(dev int) bool { return C.autoq_gemm_w8a8_wgmma_available(C.int(dev)) != 0 }

// GemmW8A8Dev writes out (F16 [M, N]) = f16(acc * aScales[m] * wScales[n] (+ bias[n])) for
// int8 a [M, K] and w [N, K], F32 scales and bias, with W8A8 kernel k (a tiled kernel, or
// WgmmaTMA, which needs no workspace).
func GemmW8A8Dev(k Kernel, a, aScales, w, wScales, bias, out *Buffer, M, N, K int, ws *Workspace) error {
	if err := checkBufs("gemm w8a8", a, M*K, aScales, 4*M, w, N*K, wScales, 4*N, out, 2*M*N); err != nil {
		return err
	}
	if k == WgmmaTMA {
		return call(func() C.int {
			return C.autoq_gemm_w8a8_wgmma(C.int(ws.dev), (*C.int8_t)(a.ptr), (*C.float)(aScales.ptr), (*C.int8_t)(w.ptr),
				(*C.float)(wScales.ptr), (*C.float)(ptrOrNil(bias)), out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
		})
	}
	red, wsp, wsn, err := w8a8SplitK(k, ws, M, N, K)
	if err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_w8a8(C.int(ws.dev), (*C.int8_t)(a.ptr), (*C.float)(aScales.ptr), (*C.int8_t)(w.ptr),
			(*C.float)(wScales.ptr), (*C.float)(ptrOrNil(bias)), out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K),
			red, wsp, C.size_t(wsn), nil)
	})
}

// w8a8SplitK is the split-K reduction of the W8A8 kernel k and its workspace, grown for
// [M, K] x [N, K].
func w8a8SplitK(k Kernel, ws *Workspace, M, N, K int) (C.int, unsafe.Pointer, int, error) {
	red, err := splitK(OpW8A8, k)
	if err != nil {
		return 0, nil, 0, err
	}
	wsp, wsn, err := ws.Ensure(W8A8WorkspaceBytes(ws.dev, M, N, K))
	if err != nil {
		return 0, nil, 0, err
	}
	return red, wsp, wsn, nil
}

// GemmI8Dev writes the exact int32 accumulators of int8 a [M, K] times w [N, K] into out
// (int32 [M, N]) with tiled kernel k (the W8A8 kernel's debug entry point).
func GemmI8Dev(k Kernel, a, w, out *Buffer, M, N, K int, ws *Workspace) error {
	if err := checkBufs("gemm i8", a, M*K, w, N*K, out, 4*M*N); err != nil {
		return err
	}
	if k == WgmmaTMA {
		return call(func() C.int {
			return C.autoq_gemm_w8a8_wgmma_i32(C.int(ws.dev), (*C.int8_t)(a.ptr), (*C.int8_t)(w.ptr), (*C.int32_t)(out.ptr),
				C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
		})
	}
	red, wsp, wsn, err := w8a8SplitK(k, ws, M, N, K)
	if err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_w8a8_i32(C.int(ws.dev), (*C.int8_t)(a.ptr), (*C.int8_t)(w.ptr), (*C.int32_t)(out.ptr),
			C.int64_t(M), C.int64_t(N), C.int64_t(K), red, wsp, C.size_t(wsn), nil)
	})
}

// GemmW4A16TiledDev writes out (F16 [M, N]) = a (F16 [M, K]) x the tiled-layout weight w
// (layout.PackW4A16Tiled: packed nibbles, F16 scales and zeros) with tiled kernel k.
func GemmW4A16TiledDev(k Kernel, a, w, scales, zeros, bias, out *Buffer, M, N, K, group int, ws *Workspace) error {
	red, err := splitK(OpW4A16Tiled, k)
	if err != nil {
		return err
	}
	if err := checkW4Bufs(a, w, scales, zeros, out, M, N, K, group, N*K/2); err != nil {
		return err
	}
	wsp, wsn, err := ws.Ensure(W4A16TiledWorkspaceBytes(ws.dev, M, N, K))
	if err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_w4a16_tiled(C.int(ws.dev), a.ptr, w.ptr, scales.ptr, ptrOrNil(zeros), (*C.float)(ptrOrNil(bias)),
			out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), red, wsp, C.size_t(wsn), nil)
	})
}

// GemmW4A16StripDev is GemmW4A16TiledDev's function with the strip kernel, on a weight in
// the strip layout (layout.PackW4A16Strip; K padded to a multiple of 128). No workspace.
func GemmW4A16StripDev(a, w, scales, zeros, bias, out *Buffer, M, N, K, group int) error {
	kPad := (K + 127) / 128 * 128
	if err := checkW4Bufs(a, w, scales, zeros, out, M, N, K, group, N*kPad/2); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_w4a16_strip(C.int(a.dev), a.ptr, w.ptr, scales.ptr, ptrOrNil(zeros), (*C.float)(ptrOrNil(bias)),
			out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), nil)
	})
}

func checkW4Bufs(a, w, scales, zeros, out *Buffer, M, N, K, group, wBytes int) error {
	ng := 0
	if group > 0 {
		ng = K / group
	}
	if err := checkBufs("gemm w4a16", a, 2*M*K, w, wBytes, scales, 2*N*ng, out, 2*M*N); err != nil {
		return err
	}
	if zeros != nil {
		return checkBufs("gemm w4a16 zeros", zeros, 2*N*ng)
	}
	return nil
}

// GemmF16Dev writes out (F16 [M, N]) = a (F16 [M, K]) x w (F16 [N, K])^T with cuBLAS.
func GemmF16Dev(a, w, out *Buffer, M, N, K int) error {
	if err := checkBufs("gemm f16", a, 2*M*K, w, 2*N*K, out, 2*M*N); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gemm_f16_cublas(C.int(a.dev), a.ptr, w.ptr, out.ptr, C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
	})
}

// ActQuantPerTokenDev quantizes x ([M, K] of dt, F16 or BF16) to int8 q [M, K] with one F32
// scale per row in scales (autoq_act_quant_per_token, bit-exact with quant's).
func ActQuantPerTokenDev(x *Buffer, dt tensor.DType, M, K int, q, scales *Buffer) error {
	cdt, err := actDType(dt)
	if err != nil {
		return err
	}
	if err := checkBufs("quantize activations", x, 2*M*K, q, M*K, scales, 4*M); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_act_quant_per_token(C.int(x.dev), x.ptr, cdt, C.int64_t(M), C.int64_t(K), (*C.int8_t)(q.ptr),
			(*C.float)(scales.ptr), nil)
	})
}

// ActQuantStaticDev quantizes x with one per-tensor scale (autoq_act_quant_static).
func ActQuantStaticDev(x *Buffer, dt tensor.DType, M, K int, scale float32, q *Buffer) error {
	cdt, err := actDType(dt)
	if err != nil {
		return err
	}
	if err := checkBufs("quantize activations", x, 2*M*K, q, M*K); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_act_quant_static(C.int(x.dev), x.ptr, cdt, C.int64_t(M), C.int64_t(K), C.float(scale),
			(*C.int8_t)(q.ptr), nil)
	})
}

func actDType(dt tensor.DType) (C.int, error) {
	switch dt {
	case tensor.F16:
		return C.AUTOQ_F16, nil
	case tensor.BF16:
		return C.AUTOQ_BF16, nil
	}
	return 0, fmt.Errorf("cuda: activation dtype %s: want F16 or BF16", dt)
}
