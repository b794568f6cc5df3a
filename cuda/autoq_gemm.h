/*
 * autoq_gemm.h: the C API of autoq's GEMM kernels (act_quant.cu, gemm_w8a8.cu,
 * gemm_w4a16.cu, gemm_cublas.cu), part of libautoq_cuda.a. Plain C, no CUDA headers.
 *
 * Conventions are those of autoq.h: every function returns 0 or a status (> 0 a
 * cudaError_t, < 0 AUTOQ_ERR_*), sets autoq_last_error() on failure, takes the device
 * ordinal `dev` and makes it current, and takes `stream` as a cudaStream_t passed as void*
 * (NULL: the legacy default stream). All matrix pointers are device pointers.
 *
 * Layouts (row-major throughout):
 *   A   activations [M, K]      F16 (W4A16, cuBLAS), int8 (W8A8)
 *   W   weights     [N, K]      F16 (cuBLAS), int8 (W8A8), packed int4 (W4A16, see below)
 *   out             [M, N]      F16 (or int32 for the debug entry point)
 *   bias            [N]         float32, or NULL
 *
 * Shape constraints (violations fail with AUTOQ_ERR_INVALID and a message naming them):
 *   W8A8  : M >= 1, N % 8 == 0, K % 16 == 0; pointers 16-byte aligned.
 *   W4A16 : M >= 1, N % 64 == 0, K % 64 == 0, group % 16 == 0 and K % group == 0
 *           (group == K means one scale per output channel).
 *   act   : K % 8 == 0.
 *
 * Split-K kernels reduce their partial sums in a fixed order (deterministic, no float
 * atomics) through a caller-owned workspace: ask its size with *_workspace_bytes, allocate
 * it, zero it ONCE (autoq_memset), and pass it to every call. It starts with a fixed 16 KiB
 * region of per-tile counters (the same in both kernels, so one workspace serves calls of
 * any shape), which the kernels leave at zero again; partial sums follow. One workspace must
 * not be used by two GEMMs running at the same time.
 */
#ifndef AUTOQ_GEMM_H
#define AUTOQ_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- activation quantization (act_quant.cu) ---- */

/* Per token (row): scale[m] = amax_m / 127 (IEEE division; 1 when amax_m == 0), q = clamp(
 * rint(x / scale[m]), -127, 127). x is [M, K] with dtype AUTOQ_F16 or AUTOQ_BF16. Bit-exact
 * with quant.QuantizeActivationsPerToken. */
int autoq_act_quant_per_token(int dev, const void *x, int dtype, int64_t M, int64_t K,
                              int8_t *q, float *scales, void *stream);
/* Static per-tensor scale (host value): q = clamp(rint(x / scale), -127, 127). */
int autoq_act_quant_static(int dev, const void *x, int dtype, int64_t M, int64_t K,
                           float scale, int8_t *q, void *stream);

/* ---- W8A8 (gemm_w8a8.cu) ---- */

/* out[m,n] = f16( float(acc) * a_scales[m] * w_scales[n] (+ bias[n]) ), each product and the
 * sum rounded separately in float32 (no fused multiply-add), acc = sum_k A[m,k]*W[n,k]
 * exactly in int32. */
size_t autoq_gemm_w8a8_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w8a8(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                    const float *w_scales, const float *bias, void *out_f16, int64_t M,
                    int64_t N, int64_t K, void *workspace, size_t workspace_bytes,
                    void *stream);
/* Debug entry point: the exact int32 accumulators acc[m,n] into out_i32 [M, N]. */
int autoq_gemm_w8a8_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32,
                        int64_t M, int64_t N, int64_t K, void *workspace,
                        size_t workspace_bytes, void *stream);

/* W8A8 v2 (gemm_w8a8_v2.cu): the same functions on the same weights, for M <= 16 a
 * memory-streaming kernel (weights straight into registers with non-allocating 16-byte
 * loads, 2 strips of 32 outputs x 4 K quarters per block, split-K with int32 partials), for
 * M > 16 gemm_w8a8.cu's tiled kernel with split-K partials added by a separate grid-wide
 * kernel, and from M = 512 on with 128 x 256 tiles (v1: 128 x 128 above M = 64).
 * Accumulators are exact, so outputs are bit-identical to v1's. Workspace: v1's format, sized by
 * autoq_gemm_w8a8_v2_workspace_bytes. */
size_t autoq_gemm_w8a8_v2_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w8a8_v2(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                       const float *w_scales, const float *bias, void *out_f16, int64_t M,
                       int64_t N, int64_t K, void *workspace, size_t workspace_bytes,
                       void *stream);
int autoq_gemm_w8a8_v2_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32,
                           int64_t M, int64_t N, int64_t K, void *workspace,
                           size_t workspace_bytes, void *stream);

/* ---- W4A16 (gemm_w4a16.cu) ---- */

/* Packed weights: produced on the host by Go's cgo.PackW4A16 (layout documented at the top
 * of gemm_w4a16.cu): N*K/2 bytes of nibbles u = level + 8 (symmetric) or u = level
 * (asymmetric), in MMA-fragment order; scales as F16 [K/group, N/64, 8, 8] in the matching
 * permuted order; zeros (asymmetric only, else NULL) as F16 holding the integer zero point,
 * same shape. out[m,n] = f16( sum_k A[m,k] * f16(f16(u-z) * scale) (+ bias[n]) ), F32
 * accumulation. */
size_t autoq_gemm_w4a16_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w4a16(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                     const void *zeros_f16, const float *bias, void *out_f16, int64_t M,
                     int64_t N, int64_t K, int64_t group, void *workspace,
                     size_t workspace_bytes, void *stream);

/* W4A16 v2 (gemm_w4a16_v2.cu): the same function on the same packed weights, for M <= 16 a
 * memory-streaming kernel (weights straight into registers with non-allocating 16-byte
 * loads, 2 column strips x 4 K quarters per block, fixed-order split-K), for M > 16 the call
 * is autoq_gemm_w4a16's. Differs from v1 only in the F32 summation order. Its workspace has
 * v1's format; size it with autoq_gemm_w4a16_v2_workspace_bytes. */
size_t autoq_gemm_w4a16_v2_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K);
int autoq_gemm_w4a16_v2(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                        const void *zeros_f16, const float *bias, void *out_f16, int64_t M,
                        int64_t N, int64_t K, int64_t group, void *workspace,
                        size_t workspace_bytes, void *stream);

/* W4A16 v3 (gemm_w4a16_v3.cu): the same function for small M (meant for M <= 16; larger M
 * runs in 16-row chunks that re-read the weights) in ONE launch with no workspace, on weights
 * packed by cgo.PackW4A16V3 (8-column x 128-input tiles, K padded to a multiple of 128, layout
 * at the top of gemm_w4a16_v3.cu); scales (and zeros) as F16 [K/group, N] row-major. Differs
 * from v1 only in the F32 summation order; deterministic. */
int autoq_gemm_w4a16_v3(int dev, const void *A_f16, const void *W_packed_v3,
                        const void *scales_f16, const void *zeros_f16, const float *bias,
                        void *out_f16, int64_t M, int64_t N, int64_t K, int64_t group,
                        void *stream);

/* W8A8 v3 (gemm_w8a8_v3.cu): the same functions on the same row-major int8 weights for small
 * M (larger M in 16-row chunks), one launch, no workspace; bit-identical to v1. */
int autoq_gemm_w8a8_v3(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                       const float *w_scales, const float *bias, void *out_f16, int64_t M,
                       int64_t N, int64_t K, void *stream);
int autoq_gemm_w8a8_v3_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32,
                           int64_t M, int64_t N, int64_t K, void *stream);

/* ---- cuBLAS FP16 baseline (gemm_cublas.cu) ---- */

/* out[M,N] = A[M,K] x W[N,K]^T, F16 in and out, F32 accumulation (cublasGemmEx). The
 * cuBLAS handle is created once per device and reused. */
int autoq_gemm_f16_cublas(int dev, const void *A_f16, const void *W_f16, void *out_f16,
                          int64_t M, int64_t N, int64_t K, void *stream);

/* ---- benchmark helpers (gemm_cublas.cu) ---- */

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
