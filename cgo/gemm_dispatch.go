//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import "unsafe"

// Kernel variants and the dispatch between them. Every variant stays callable by name (the
// tests check each against the CPU reference, `autoq bench gemm` times each side by side);
// the constants below choose which one the plain entry points (GemmW4A16,
// GemmPackedW4A16) use. Flip them only after a GPU run shows the faster variant.

// W4A16Variant names a W4A16 kernel.
type W4A16Variant int

const (
	// W4A16V1 is cuda/gemm_w4a16.cu: cp.async ring in shared memory, tiles of 16/32/64 rows.
	W4A16V1 W4A16Variant = 1
	// W4A16V2 is cuda/gemm_w4a16_v2.cu: for M <= 16 weights streamed straight into registers
	// (non-allocating 16-byte loads), 2 strips x 4 K quarters per block; for M > 16 V1's
	// kernel with its split-K partials added by a separate grid-wide kernel (same bits).
	W4A16V2 W4A16Variant = 2
	// W4A16V3 is cuda/gemm_w4a16_v3.cu (M <= 16): one launch, no workspace, on weights in
	// the PackW4A16V3 layout (8-column strips: a block owns 16 columns and all of K).
	W4A16V3 W4A16Variant = 3
)

// The W4A16 dispatch switches: the plain W4A16 entry points run W4A16V2 for
// M <= W4A16V2MaxM and for M >= W4A16V2MinM, W4A16V1 otherwise.
//
// Set from the second H100 run (docs/gpu-results.md, run 2, `autoq bench gemm --quick`,
// llama2-7b shapes, speedup over cuBLAS FP16): at M = 1 V1 wins on every shape (1.61-2.30x
// against V2's 1.43-1.91x); at M = 16 V2 wins on three shapes of four (geomean 1.43x against
// 1.27x); at M = 128 V2's separate split-K reduction wins everywhere (0.49-0.63x against
// 0.29-0.59x); at M = 1024 they tie. So V2 from M = 16 on. M = 2..15 were not measured: V1
// stays there.
const (
	W4A16V2MaxM = 0
	W4A16V2MinM = 16
)

// W4A16V3MaxM: the v3 kernel (cuda/gemm_w4a16_v3.cu: one launch, 16-32 output columns per
// block over all of K, no split-K) runs every M <= W4A16V3MaxM. Third H100 run: geomean
// 1.88x over cuBLAS FP16 at M <= 16 on the llama2-7b shapes, against 1.57x (v1) and 1.56x
// (v2); v1 stays 3-5% ahead at M = 1 on gate_up and down only. v3's weight layout differs:
// the plain entry points repack on the host (they upload the weight every call anyway).
const W4A16V3MaxM = 16

// w4a16VariantFor is the variant the plain entry points use at M tokens.
func w4a16VariantFor(M int) W4A16Variant {
	if M <= W4A16V3MaxM {
		return W4A16V3
	}
	if M <= W4A16V2MaxM || M >= W4A16V2MinM {
		return W4A16V2
	}
	return W4A16V1
}

// w4a16WorkspaceBytes is the split-K workspace variant v needs at (M, N, K).
func w4a16WorkspaceBytes(v W4A16Variant, dev, M, N, K int) int {
	if v == W4A16V2 {
		return int(C.autoq_gemm_w4a16_v2_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
	}
	return int(C.autoq_gemm_w4a16_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
}

// w4a16Launch runs variant v on device pointers (zeros and bias may be nil).
func w4a16Launch(v W4A16Variant, dev int, a, w, scales, zeros unsafe.Pointer, bias *C.float, out unsafe.Pointer, M, N, K, group int, ws unsafe.Pointer, wsn int) C.int {
	if v == W4A16V2 {
		return C.autoq_gemm_w4a16_v2(C.int(dev), a, w, scales, zeros, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), ws, C.size_t(wsn), nil)
	}
	return C.autoq_gemm_w4a16(C.int(dev), a, w, scales, zeros, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), ws, C.size_t(wsn), nil)
}

// W8A8Variant names a W8A8 kernel.
type W8A8Variant int

const (
	// W8A8V1 is cuda/gemm_w8a8.cu: cp.async ring in shared memory, ldmatrix, tiles of 16/64/128 rows.
	W8A8V1 W8A8Variant = 1
	// W8A8V2 is cuda/gemm_w8a8_v2.cu: for M <= 16 weights streamed straight into registers,
	// 2 strips of 32 outputs x 4 K quarters per block; for M > 16 V1's tiled kernel with the
	// split-K partials added by a separate grid-wide kernel, and from M = 512 on 128 x 256
	// tiles (8 warps of 64 x 64) instead of 128 x 128. Bit-identical outputs (exact int32
	// accumulators, the same epilogue).
	W8A8V2 W8A8Variant = 2
	// W8A8V3 is cuda/gemm_w8a8_v3.cu (M <= 16): one launch, no workspace, a block owns 16
	// output columns and all of K. Bit-identical outputs.
	W8A8V3 W8A8Variant = 3
)

// The W8A8 dispatch switches: GemmW8A8 and GemmI8 run W8A8V2 for M <= W8A8V2MaxM and for
// W8A8V2MinM <= M <= W8A8V2UpToM, W8A8V1 otherwise.
//
// Set from the second H100 run (docs/gpu-results.md, run 2): V1 wins at M = 1 and M = 16
// (geomean 1.49x against V2's 1.34x over cuBLAS FP16), V2's separate split-K reduction wins
// at M = 128 (0.75-1.08x against 0.48-1.08x), and V2's 128x256 tiles, which it uses from
// M = 512 on, lose at M = 1024 (0.58-0.60x against 0.68-0.70x). So V2 for 17..511.
const (
	W8A8V2MaxM  = 0
	W8A8V2MinM  = 17
	W8A8V2UpToM = 511
)

func w8a8VariantFor(M int) W8A8Variant {
	if M <= W8A8V2MaxM || (M >= W8A8V2MinM && M <= W8A8V2UpToM) {
		return W8A8V2
	}
	return W8A8V1
}

func w8a8WorkspaceBytes(v W8A8Variant, dev, M, N, K int) int {
	if v == W8A8V2 {
		return int(C.autoq_gemm_w8a8_v2_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
	}
	return int(C.autoq_gemm_w8a8_workspace_bytes(C.int(dev), C.int64_t(M), C.int64_t(N), C.int64_t(K)))
}

// w8a8Launch runs variant v on device pointers (bias may be nil).
func w8a8Launch(v W8A8Variant, dev int, a unsafe.Pointer, aScales *C.float, w unsafe.Pointer, wScales, bias *C.float, out unsafe.Pointer, M, N, K int, ws unsafe.Pointer, wsn int) C.int {
	if v == W8A8V2 {
		return C.autoq_gemm_w8a8_v2(C.int(dev), (*C.int8_t)(a), aScales, (*C.int8_t)(w), wScales, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), ws, C.size_t(wsn), nil)
	}
	return C.autoq_gemm_w8a8(C.int(dev), (*C.int8_t)(a), aScales, (*C.int8_t)(w), wScales, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), ws, C.size_t(wsn), nil)
}

// w8a8LaunchI32 runs variant v's debug entry point (exact int32 accumulators).
func w8a8LaunchI32(v W8A8Variant, dev int, a, w, out unsafe.Pointer, M, N, K int, ws unsafe.Pointer, wsn int) C.int {
	if v == W8A8V2 {
		return C.autoq_gemm_w8a8_v2_i32(C.int(dev), (*C.int8_t)(a), (*C.int8_t)(w), (*C.int32_t)(out), C.int64_t(M), C.int64_t(N), C.int64_t(K), ws, C.size_t(wsn), nil)
	}
	return C.autoq_gemm_w8a8_i32(C.int(dev), (*C.int8_t)(a), (*C.int8_t)(w), (*C.int32_t)(out), C.int64_t(M), C.int64_t(N), C.int64_t(K), ws, C.size_t(wsn), nil)
}
