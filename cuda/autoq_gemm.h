/*
 * autoq_gemm.h: the C API of autoq's GEMM kernels (act_quant.cu, gemm_w8a8.cu,
 * gemm_w4a16_tiled.cu, gemm_w4a16_strip.cu, gemm_cublas.cu, bench_helpers.cu), part of
 * libautoq_cuda.a. Plain C, no CUDA headers.
 *
 * Conventions are those of autoq.h: every function returns 0 or a status (> 0 a
 * cudaError_t, < 0 AUTOQ_ERR_*), sets autoq_last_error() on failure, takes the device
 * ordinal `dev` and makes it current, and takes `stream` as a cudaStream_t passed as void*
 * (NULL: the legacy default stream). All matrix pointers are device pointers.
 *
 * Which kernel runs for which M is not decided here: every entry point runs exactly the
 * kernel it names, and the Go dispatch table (cgo/dispatch.go) chooses, from the H100
 * measurements in docs/gpu-results.md.
 *
 * Layouts (row-major throughout):
 *   A   activations [M, K]      F16 (W4A16, cuBLAS), int8 (W8A8)
 *   W   weights     [N, K]      F16 (cuBLAS), int8 (W8A8), packed int4 (W4A16, see below)
 *   out             [M, N]      F16 (or int32 for the debug entry point)
 *   bias            [N]         float32, or NULL
 *
 * Shape constraints (violations fail with AUTOQ_ERR_INVALID and a message naming them):
 *   W8A8  : M >= 1, N % 8 == 0, K % 16 == 0; pointers 16-byte aligned.
 *   W4A16 : M >= 1, N % 64 == 0, K % 64 == 0, group % 32 == 0 and K % group == 0
 *           (group == K means one scale per output channel).
 *   act   : K % 8 == 0.
 *
 * Split-K kernels reduce their partial sums in a fixed order (deterministic, no float
 * atomics) through a caller-owned workspace: ask its size with *_workspace_bytes, allocate
 * it, zero it ONCE (autoq_memset), and pass it to every call. It starts with a fixed 16 KiB
 * region of per-tile counters (the same in both kernels, so one workspace serves calls of
 * any shape), which the kernels leave at zero again; partial sums follow. One workspace must
 * not be used by two GEMMs running at the same time. `reduce` says who adds the partials:
 * the last block of each tile to arrive, or a separate grid-wide kernel launched right
 * after; both add in the same order, so the outputs are the same bits.
 */
#ifndef AUTOQ_GEMM_H
#define AUTOQ_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Split-K reductions (the `reduce` argument of the split-K GEMMs). */
enum {
  AUTOQ_SPLITK_LAST_BLOCK = 0,   /* the last block of a tile adds the partials */
  AUTOQ_SPLITK_REDUCE_KERNEL = 1 /* a separate grid-wide kernel adds them */
};

/* ---- activation quantization (act_quant.cu) ---- */

/* Per token (row): scale[m] = amax_m / 127 (IEEE division; 1 when amax_m == 0), q = clamp(
 * rint(x / scale[m]), -127, 127). x is [M, K] with dtype AUTOQ_F16 or AUTOQ_BF16. Bit-exact
 * with quant.QuantizeActivationsPerToken. */
int autoq_act_quant_per_token(int dev, const void *x, int dtype, int64_t M, int64_t K,
                              int8_t *q, float *scales, void *stream);
/* Static per-tensor scale (host value): q = clamp(rint(x / scale), -127, 127). */
int autoq_act_quant_static(int dev, const void *x, int dtype, int64_t M, int64_t K,
                           float scale, int8_t *q, void *stream);

/* ---- W8A8 (gemm_w8a8.cu: the tiled split-K kernel) ---- */

/* out[m,n] = f16( float(acc) * a_scales[m] * w_scales[n] (+ bias[n]) ), each product and the
 * sum rounded separately in float32 (no fused multiply-add), acc = sum_k A[m,k]*W[n,k]
 * exactly in int32 (so every split and either reduction gives the same bits). W is the
 * QTensor's int8 data as stored. */
size_t autoq_gemm_w8a8_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w8a8(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                    const float *w_scales, const float *bias, void *out_f16, int64_t M,
                    int64_t N, int64_t K, int reduce, void *workspace, size_t workspace_bytes,
                    void *stream);
/* Debug entry point: the exact int32 accumulators acc[m,n] into out_i32 [M, N]. */
int autoq_gemm_w8a8_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32,
                        int64_t M, int64_t N, int64_t K, int reduce, void *workspace,
                        size_t workspace_bytes, void *stream);

/* ---- W8A8, sm_90a (cuda/sm90a/gemm_w8a8_wgmma.cu: TMA + wgmma; a stub when not built) ---- */

/* 1 when the sm_90a kernel is built into this library and device dev is compute
 * capability 9.0 (the only one its sm_90a code runs on), else 0. */
int autoq_gemm_w8a8_wgmma_available(int dev);
/* autoq_gemm_w8a8's function (same epilogue, same bits) with 128 x 128 tiles, no split-K,
 * no workspace; M >= 1, N % 8 == 0, K % 16 == 0, A and W 16-byte aligned. Fails with
 * AUTOQ_ERR_UNSUPPORTED when not built or on another device. */
int autoq_gemm_w8a8_wgmma(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                          const float *w_scales, const float *bias, void *out_f16, int64_t M,
                          int64_t N, int64_t K, void *stream);
/* The exact int32 accumulators (debug entry point). */
int autoq_gemm_w8a8_wgmma_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32,
                              int64_t M, int64_t N, int64_t K, void *stream);

/* ---- W4A16, tiled (gemm_w4a16_tiled.cu: 64-column MMA tiles, cp.async ring, split-K) ---- */

/* Packed weights: produced on the host by Go's layout.PackW4A16Tiled (layout documented at
 * the top of gemm_w4a16_tiled.cu): N*K/2 bytes of nibbles u = level + 8 (symmetric) or
 * u = level (asymmetric), in MMA-fragment order; scales as F16 [K/group, N/64, 8, 8] in the
 * matching permuted order; zeros (asymmetric only, else NULL) as F16 holding the integer zero
 * point, same shape. out[m,n] = f16( sum_k A[m,k] * f16(f16(u-z) * scale) (+ bias[n]) ), F32
 * accumulation. */
size_t autoq_gemm_w4a16_tiled_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w4a16_tiled(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                           const void *zeros_f16, const float *bias, void *out_f16, int64_t M,
                           int64_t N, int64_t K, int64_t group, int reduce, void *workspace,
                           size_t workspace_bytes, void *stream);

/* ---- W4A16, strip (gemm_w4a16_strip.cu: small M, whole K per block, one launch) ---- */

/* The same function for small M (meant for M <= 16; larger M runs in 16-row chunks that
 * re-read the weights) in ONE launch with no workspace, on weights packed by
 * layout.PackW4A16Strip (8-column x 128-input tiles, K padded to a multiple of 128, layout at
 * the top of gemm_w4a16_strip.cu); scales (and zeros) as F16 [K/group, N] row-major. Differs
 * from the tiled kernel only in the F32 summation order; deterministic. */
int autoq_gemm_w4a16_strip(int dev, const void *A_f16, const void *W_packed_strip,
                           const void *scales_f16, const void *zeros_f16, const float *bias,
                           void *out_f16, int64_t M, int64_t N, int64_t K, int64_t group,
                           void *stream);

/* ---- W4A16, persistent stripes (gemm_w4a16_swapped.cu, gemm_w4a16_mma.cu) ---- */

/* The same function and the same packed weight as autoq_gemm_w4a16_tiled (layout.PackW4A16Tiled),
 * persistent blocks over stripes of (tile, K chunk) units, the group size a template parameter,
 * partial sums of tiles cut by a block boundary added in a fixed order (deterministic; see
 * gemm_w4a16_stripes.cuh). Kernels (the `kernel` of autoq_gemm_w4a16_fits): */
enum {
  AUTOQ_W4A16_SWAPPED = 1, /* M <= 16: the weight as the MMA's A operand, tokens on n = 8 */
  AUTOQ_W4A16_MMA = 2      /* M = 17..256: activations as A, 64-row blocks */
};
/* 1 when the kernel takes the call: N % 64 == 0; K a multiple of 256 (swapped) or 64 (mma);
 * group 32, 64, 128, 256 or a multiple of 256 (swapped), 32, 64 or a multiple of 64 (mma);
 * M <= 16 for the swapped kernel; at most 4096 output tiles. */
int autoq_gemm_w4a16_fits(int kernel, int64_t M, int64_t N, int64_t K, int64_t group);
/* Workspaces (zeroed once, left zeroed: counters at offset 0 as in the split-K kernels). */
size_t autoq_gemm_w4a16_swapped_workspace_bytes(int dev);
size_t autoq_gemm_w4a16_mma_workspace_bytes(int dev, int64_t M);
int autoq_gemm_w4a16_swapped(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                             const void *zeros_f16, const float *bias, void *out_f16, int64_t M,
                             int64_t N, int64_t K, int64_t group, void *workspace,
                             size_t workspace_bytes, void *stream);
int autoq_gemm_w4a16_mma(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                         const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                         int64_t K, int64_t group, void *workspace, size_t workspace_bytes,
                         void *stream);

/* ---- W4A16, dequantize + cuBLAS (gemm_w4a16_dequant.cu) ---- */

/* out_f16 [N, K] row-major = the packed weight dequantized as every W4A16 kernel does
 * (f16(f16(u - z) * scale)). */
int autoq_w4a16_dequant_tiled(int dev, const void *W_packed, const void *scales_f16,
                              const void *zeros_f16, void *out_f16, int64_t N, int64_t K,
                              int64_t group, void *stream);
/* autoq_w4a16_dequant_tiled into scratch (>= 2*N*K bytes, reused across calls), then
 * autoq_gemm_f16_cublas, then the bias (F32, added to the F16 output and rounded again). */
int autoq_gemm_w4a16_dequant_cublas(int dev, const void *A_f16, const void *W_packed,
                                    const void *scales_f16, const void *zeros_f16, const float *bias,
                                    void *out_f16, int64_t M, int64_t N, int64_t K, int64_t group,
                                    void *scratch_f16, size_t scratch_bytes, void *stream);

/* ---- cuBLAS FP16 baseline (gemm_cublas.cu) ---- */

/* out[M,N] = A[M,K] x W[N,K]^T, F16 in and out, F32 accumulation (cublasGemmEx). The
 * cuBLAS handle is created once per device and reused. */
int autoq_gemm_f16_cublas(int dev, const void *A_f16, const void *W_f16, void *out_f16,
                          int64_t M, int64_t N, int64_t K, void *stream);

/* ---- benchmark helpers (bench_helpers.cu) ---- */

/* Fills a device buffer with deterministic pseudo-random data from seed:
 * kind 0: random bytes; 1: F16 uniform in [-amp, amp]; 2: F32 uniform in [lo, hi] with
 * lo = amp/8, hi = amp (positive, for scales); 3: F16 uniform in [amp/8, amp];
 * 4: F16 integers in [0, 15] (zero points). n counts elements (bytes for kind 0). */
int autoq_gemm_fill_random(int dev, void *ptr, int64_t n, int kind, float amp, uint64_t seed,
                           void *stream);

/* Occupies the stream for about ns nanoseconds (at most 1 s), so that launches queued
 * behind it start back to back (used before timed benchmark loops). */
int autoq_gemm_spin(int dev, int64_t ns, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* AUTOQ_GEMM_H */
