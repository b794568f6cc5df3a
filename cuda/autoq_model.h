/*
 * autoq_model.h: the C API of the Llama prefill kernels (cuda/model_*.cu), part of
 * libautoq_cuda.a. Plain C, no CUDA headers. Conventions are those of autoq.h: int status,
 * autoq_last_error() names the operation and the kernel, `dev` is made current, `stream` is
 * a cudaStream_t as void* (NULL: the legacy default stream), all pointers are device
 * pointers.
 *
 * Activation layout: M rows (the tokens of every sequence of a batch, stacked) by channels,
 * row-major. The residual stream x is F32 (it accumulates every layer's output, so keeping
 * it in F32 costs little and keeps its rounding error from growing with depth); every
 * linear layer's input and output is F16 (what the GEMMs read and write); arithmetic inside
 * the kernels is F32.
 */
#ifndef AUTOQ_MODEL_H
#define AUTOQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x[m, :] = f32(table[tokens[m], :]); table is [vocab, D] F16. Token ids outside
 * [0, vocab) make the row NaN (the Go side checks ids before the call). */
int autoq_model_embed(int dev, const void *table_f16, const int32_t *tokens, int64_t M, int64_t D,
                      int64_t vocab, float *x, void *stream);

/* out[m, i] = f16(w[i] * (x[m, i] * r_m)), r_m = 1 / sqrt(mean_i(x[m, i]^2) + eps), x F32,
 * w F32 [D]. One block per row (tree reduction of the squares in F32). */
int autoq_model_rmsnorm(int dev, const float *x, const float *w, int64_t M, int64_t D, float eps,
                        void *out_f16, void *stream);

/* Rotary embedding in place, Hugging Face's rotate_half pairing (i, i + hd/2), on q
 * [M, nq*hd] and k [M, nk*hd] (F16): a' = a cos - b sin, b' = a sin + b cos in F32, with
 * cos/sin[pos[m], i] from F32 tables [npos, hd/2] built on the host. */
int autoq_model_rope(int dev, void *q_f16, void *k_f16, const int32_t *pos, const float *cos_t,
                     const float *sin_t, int64_t npos, int64_t M, int nq, int nk, int hd,
                     void *stream);

/* Causal grouped-query attention for prefill. Sequence b holds rows
 * [offsets[b], offsets[b+1]) (positions 0..len-1); query head h reads key/value head
 * h / (nq / nk). out[t, h] = sum_{s <= t} softmax_s(q_t . k_s / sqrt(hd)) v_s, online
 * softmax in F32 over key tiles of 32. q/out [M, nq*hd], k/v [M, nk*hd], all F16.
 * hd must be even and <= 256; nq a multiple of nk; max_len the longest sequence. */
int autoq_model_attention(int dev, const void *q_f16, const void *k_f16, const void *v_f16,
                          const int32_t *offsets, int nseq, int max_len, int nq, int nk, int hd,
                          void *out_f16, void *stream);

/* out[i] = f16(silu(gate[i]) * up[i]) (F32 inside; out may alias gate). */
int autoq_model_swiglu(int dev, const void *gate_f16, const void *up_f16, void *out_f16,
                       int64_t n, void *stream);

/* autoq_model_rmsnorm with the per-token int8 quantization of its F16 output fused in (the
 * input of W8A8 layers): out as autoq_model_rmsnorm writes it, q [M, D] int8 and scales [M]
 * F32 bit for bit as autoq_act_quant_per_token(out) gives them. */
int autoq_model_rmsnorm_quant(int dev, const float *x, const float *w, int64_t M, int64_t D,
                              float eps, void *out_f16, int8_t *q, float *scales, void *stream);
/* autoq_model_swiglu over rows of H (gate, up, out [M, H]) with the per-token int8
 * quantization of out fused in, likewise bit for bit; out may be gate (each element is read
 * before the same thread writes it). */
int autoq_model_swiglu_quant(int dev, const void *gate_f16, const void *up_f16, int64_t M, int64_t H,
                             void *out_f16, int8_t *q, float *scales, void *stream);

/* x[i] += f32(y[i]) (x F32, y F16). */
int autoq_model_residual_add(int dev, float *x, const void *y_f16, int64_t n, void *stream);

/* out[m, n] = f16(f32(out[m, n]) + bias[n]) for out [M, N] F16, bias F32. */
int autoq_model_bias_add(int dev, void *out_f16, const float *bias, int64_t M, int64_t N,
                         void *stream);

/* Fake per-token int8 activation quantization (the dequantized-weight fallback of W8A8
 * layers whose shape the W8A8 kernel cannot take): per row, scale = amax / 127 (1 when
 * amax == 0), q = clamp(rint(x / scale), -127, 127) exactly as autoq_act_quant_per_token,
 * out = f16(q * scale). Any K >= 1. */
int autoq_model_fake_act_quant(int dev, const void *x_f16, int64_t M, int64_t K, void *out_f16,
                               void *stream);

/* out[M, N] (F32) = A[M, K] (F16) x W[N, K]^T (F16), F32 accumulation (cuBLAS, a handle
 * per device owned by this file): the classifier, whose logits stay F32. */
int autoq_model_gemm_f16_f32out(int dev, const void *A_f16, const void *W_f16, float *out,
                                int64_t M, int64_t N, int64_t K, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* AUTOQ_MODEL_H */
