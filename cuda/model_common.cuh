// model_common.cuh: helpers shared by the Llama prefill kernels (model_*.cu, autoq_model.h):
// the block size, the grid of a grid-stride loop, F16 widening, block-wide sum and max (a
// warp-shuffle + shared-memory reduction over 256 threads) and the row-shape check. Arithmetic
// in every model kernel is F32; F16 values are widened exactly and rounded once on store.
// Everything is static / inline: each .cu that includes this gets its own copy.
#pragma once

#include "autoq_model.h"
#include "common.cuh"

static constexpr int kThreads = 256;

static inline unsigned grid_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > 65535 * 4) b = 65535 * 4;
  if (b < 1) b = 1;
  return (unsigned)b;
}

static __device__ __forceinline__ float h2f(__half h) { return __half2float(h); }

// Block-wide sum (kThreads threads); every thread gets the result.
static __device__ __forceinline__ float block_sum(float v, float *red) {
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

static __device__ __forceinline__ float block_max(float v, float *red) {
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

// The element arithmetic of the prefill kernels that the fused quantizing variants
// (model_fused_quant.cu) must repeat bit for bit: one definition, used by both.
// RMSNorm of one row: r = 1 / sqrt(mean(x^2) + eps) (block_sum of the squares, every thread
// gets it), then each output f16(w * (r * x)).
static __device__ __forceinline__ float rmsnorm_inv(const float *row, int64_t D, float eps, float *red) {
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) ss += row[i] * row[i];
  ss = block_sum(ss, red);
  return 1.0f / sqrtf(ss / (float)D + eps);
}
static __device__ __forceinline__ __half rmsnorm_elem(float w, float r, float x) { return __float2half_rn(w * (r * x)); }
// SwiGLU: f16(silu(g) * u) in F32.
static __device__ __forceinline__ __half swiglu_elem(float g, float u) {
  return __float2half_rn(g * (1.0f / (1.0f + expf(-g))) * u);
}

static inline int check_rows(const char *op, int64_t M, int64_t D) {
  if (M < 1 || D < 1 || M > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape [%lld, %lld]: need 1 <= M < 2^31 and D >= 1", op,
                           (long long)M, (long long)D);
  return 0;
}
