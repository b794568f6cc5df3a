// model_ops.cu: the element-wise and row-wise kernels of the Llama prefill (autoq_model.h):
// embedding lookup, RMSNorm, RoPE, SwiGLU, residual and bias adds, fake per-token activation
// quantization, and the F32-output classifier GEMM. Attention is in model_attention.cu.
//
// Thread mapping: RMSNorm and the fake activation quantizer use one 256-thread block per row
// (a warp-shuffle + shared-memory reduction); everything else is a grid-stride loop over
// elements. Arithmetic is F32; F16 values are widened exactly and rounded once on store.
#include <cublas_v2.h>

#include <mutex>

#include "autoq_model.h"
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > 65535 * 4) b = 65535 * 4;
  if (b < 1) b = 1;
  return (unsigned)b;
}

__device__ __forceinline__ float h2f(__half h) { return __half2float(h); }

// Block-wide sum (kThreads threads); every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float *red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; w++) s += red[w];
  __syncthreads();
  return s;
}

__device__ __forceinline__ float block_max(float v, float *red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = red[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; w++) s = fmaxf(s, red[w]);
  __syncthreads();
  return s;
}

__global__ void embed_kernel(const __half *table, const int32_t *tokens, int64_t M, int64_t D, int64_t vocab,
                             float *x) {
  const int64_t n = M * D;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = i / D, d = i % D;
    const int32_t t = tokens[m];
    x[i] = (t >= 0 && t < vocab) ? h2f(table[(int64_t)t * D + d]) : __int_as_float(0x7fc00000);
  }
}

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const float *x, const float *w, int64_t D, float eps,
                                                           __half *out) {
  __shared__ float red[kThreads / 32];
  const float *row = x + blockIdx.x * D;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) ss += row[i] * row[i];
  ss = block_sum(ss, red);
  const float r = 1.0f / sqrtf(ss / (float)D + eps);
  __half *o = out + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) o[i] = __float2half_rn(w[i] * (r * row[i]));
}

// One thread per (row, head, pair i < hd/2) over the q heads, then the k heads.
__global__ void rope_kernel(__half *q, __half *k, const int32_t *pos, const float *cos_t, const float *sin_t,
                            int64_t M, int nq, int nk, int hd) {
  const int half = hd / 2, heads = nq + nk;
  const int64_t n = M * heads * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int i = (int)(idx % half);
    const int h = (int)((idx / half) % heads);
    const int64_t m = idx / ((int64_t)half * heads);
    __half *v = h < nq ? q + (m * nq + h) * hd : k + (m * nk + (h - nq)) * hd;
    const int64_t t = (int64_t)pos[m] * half + i;
    const float c = cos_t[t], s = sin_t[t];
    const float a = h2f(v[i]), b = h2f(v[i + half]);
    v[i] = __float2half_rn(a * c - b * s);
    v[i + half] = __float2half_rn(a * s + b * c);
  }
}

__global__ void swiglu_kernel(const __half *gate, const __half *up, __half *out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = h2f(gate[i]);
    out[i] = __float2half_rn(g * (1.0f / (1.0f + expf(-g))) * h2f(up[i]));
  }
}

__global__ void residual_kernel(float *x, const __half *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] += h2f(y[i]);
}

__global__ void bias_kernel(__half *out, const float *bias, int64_t M, int64_t N) {
  const int64_t n = M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __float2half_rn(h2f(out[i]) + bias[i % N]);
}

__global__ void __launch_bounds__(kThreads) fake_act_quant_kernel(const __half *x, int64_t K, __half *out) {
  __shared__ float red[kThreads / 32];
  const __half *row = x + blockIdx.x * K;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < K; i += kThreads) amax = fmaxf(amax, fabsf(h2f(row[i])));
  amax = block_max(amax, red);
  const float scale = amax == 0.0f ? 1.0f : __fdiv_rn(amax, 127.0f);
  __half *o = out + blockIdx.x * K;
  for (int64_t i = threadIdx.x; i < K; i += kThreads) {
    float q = rintf(__fdiv_rn(h2f(row[i]), scale));
    q = fminf(fmaxf(q, -127.0f), 127.0f);
    o[i] = __float2half_rn(__fmul_rn(q, scale));
  }
}

int check_rows(const char *op, int64_t M, int64_t D) {
  if (M < 1 || D < 1 || M > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape [%lld, %lld]: need 1 <= M < 2^31 and D >= 1", op,
                           (long long)M, (long long)D);
  return 0;
}

std::mutex g_mu;
cublasHandle_t g_handles[64];

} // namespace

extern "C" int autoq_model_embed(int dev, const void *table_f16, const int32_t *tokens, int64_t M, int64_t D,
                                 int64_t vocab, float *x, void *stream) {
  const char *op = "autoq_model_embed";
  AUTOQ_TRY(check_rows(op, M, D));
  if (table_f16 == nullptr || tokens == nullptr || x == nullptr || vocab < 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or vocab %lld < 1", op, (long long)vocab);
  AUTOQ_TRY(autoq_use_device(dev, op));
  embed_kernel<<<grid_for(M * D), kThreads, 0, (cudaStream_t)stream>>>((const __half *)table_f16, tokens, M, D, vocab,
                                                                        x);
  return autoq_check_launch(op, "embed_kernel");
}

extern "C" int autoq_model_rmsnorm(int dev, const float *x, const float *w, int64_t M, int64_t D, float eps,
                                   void *out_f16, void *stream) {
  const char *op = "autoq_model_rmsnorm";
  AUTOQ_TRY(check_rows(op, M, D));
  if (x == nullptr || w == nullptr || out_f16 == nullptr || !(eps > 0.0f))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or eps %g not positive", op, (double)eps);
  AUTOQ_TRY(autoq_use_device(dev, op));
  rmsnorm_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>(x, w, D, eps, (__half *)out_f16);
  return autoq_check_launch(op, "rmsnorm_kernel");
}

extern "C" int autoq_model_rope(int dev, void *q_f16, void *k_f16, const int32_t *pos, const float *cos_t,
                                const float *sin_t, int64_t npos, int64_t M, int nq, int nk, int hd, void *stream) {
  const char *op = "autoq_model_rope";
  AUTOQ_TRY(check_rows(op, M, hd));
  if (hd % 2 != 0 || nq < 1 || nk < 0 || npos < 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: head dim %d must be even, heads q %d k %d, %lld positions", op, hd,
                           nq, nk, (long long)npos);
  if (q_f16 == nullptr || (nk > 0 && k_f16 == nullptr) || pos == nullptr || cos_t == nullptr || sin_t == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  rope_kernel<<<grid_for(M * (nq + nk) * (hd / 2)), kThreads, 0, (cudaStream_t)stream>>>(
      (__half *)q_f16, (__half *)k_f16, pos, cos_t, sin_t, M, nq, nk, hd);
  return autoq_check_launch(op, "rope_kernel");
}

extern "C" int autoq_model_swiglu(int dev, const void *gate_f16, const void *up_f16, void *out_f16, int64_t n,
                                  void *stream) {
  const char *op = "autoq_model_swiglu";
  if (n < 1 || gate_f16 == nullptr || up_f16 == nullptr || out_f16 == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or n = %lld", op, (long long)n);
  AUTOQ_TRY(autoq_use_device(dev, op));
  swiglu_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>((const __half *)gate_f16, (const __half *)up_f16,
                                                                     (__half *)out_f16, n);
  return autoq_check_launch(op, "swiglu_kernel");
}

extern "C" int autoq_model_residual_add(int dev, float *x, const void *y_f16, int64_t n, void *stream) {
  const char *op = "autoq_model_residual_add";
  if (n < 1 || x == nullptr || y_f16 == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or n = %lld", op, (long long)n);
  AUTOQ_TRY(autoq_use_device(dev, op));
  residual_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, (const __half *)y_f16, n);
  return autoq_check_launch(op, "residual_kernel");
}

extern "C" int autoq_model_bias_add(int dev, void *out_f16, const float *bias, int64_t M, int64_t N, void *stream) {
  const char *op = "autoq_model_bias_add";
  AUTOQ_TRY(check_rows(op, M, N));
  if (out_f16 == nullptr || bias == nullptr) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  bias_kernel<<<grid_for(M * N), kThreads, 0, (cudaStream_t)stream>>>((__half *)out_f16, bias, M, N);
  return autoq_check_launch(op, "bias_kernel");
}

extern "C" int autoq_model_fake_act_quant(int dev, const void *x_f16, int64_t M, int64_t K, void *out_f16,
                                          void *stream) {
  const char *op = "autoq_model_fake_act_quant";
  AUTOQ_TRY(check_rows(op, M, K));
  if (x_f16 == nullptr || out_f16 == nullptr) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  fake_act_quant_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>((const __half *)x_f16, K,
                                                                            (__half *)out_f16);
  return autoq_check_launch(op, "fake_act_quant_kernel");
}

// Same column-major mapping as autoq_gemm_f16_cublas (gemm_cublas.cu): out^T [N, M] =
// W^T-op(W as K x N, ld K) x A as K x M, ld K, with an F32 C matrix (ld N).
extern "C" int autoq_model_gemm_f16_f32out(int dev, const void *A_f16, const void *W_f16, float *out, int64_t M,
                                           int64_t N, int64_t K, void *stream) {
  const char *op = "autoq_model_gemm_f16_f32out";
  if (M < 1 || N < 1 || K < 1 || M > 0x7fffffffLL || N > 0x7fffffffLL || K > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld: each must be in [1, 2^31)", op,
                           (long long)M, (long long)N, (long long)K);
  if (A_f16 == nullptr || W_f16 == nullptr || out == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL device pointer", op);
  if (dev < 0 || dev >= 64) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: device %d out of range", op, dev);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cublasHandle_t h;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_handles[dev] == nullptr) {
      cublasStatus_t s = cublasCreate(&g_handles[dev]);
      if (s != CUBLAS_STATUS_SUCCESS) {
        g_handles[dev] = nullptr;
        return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasCreate on device %d failed (status %d)", op, dev,
                               (int)s);
      }
    }
    h = g_handles[dev];
  }
  cublasStatus_t s = cublasSetStream(h, (cudaStream_t)stream);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasSetStream: status %d", op, (int)s);
  const float alpha = 1.0f, beta = 0.0f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, W_f16, CUDA_R_16F, (int)K, A_f16,
                   CUDA_R_16F, (int)K, &beta, out, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasGemmEx(F16 x F16 -> F32, M=%lld N=%lld K=%lld): status %d",
                           op, (long long)M, (long long)N, (long long)K, (int)s);
  return autoq_check_launch(op, "cublasGemmEx");
}
