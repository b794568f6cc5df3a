// common.cuh: helpers shared by autoq's .cu files: the thread-local last-error buffer, CUDA
// status checks that name the operation and kernel, and element loaders for F32/F16/BF16.
//
// Every exported function follows the pattern
//     AUTOQ_TRY(autoq_use_device(dev, "autoq_quantize"));
//     kernel<<<...>>>(...);
//     return autoq_check_launch("autoq_quantize", "quantize_kernel");
// and never exits or aborts.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "autoq.h"

#ifdef __cplusplus
extern "C" {
#endif
// Stores a printf-style message as this thread's last error and returns status.
int autoq_set_error(int status, const char *fmt, ...);
// Formats "<op>: <cudaErrorName> (<cudaGetErrorString>)" and returns (int)err.
int autoq_fail_cuda(cudaError_t err, const char *op);
// Makes dev current; fails naming op.
int autoq_use_device(int dev, const char *op);
// Checks cudaGetLastError after a launch of kernel inside op.
int autoq_check_launch(const char *op, const char *kernel);
#ifdef __cplusplus
}
#endif

#define AUTOQ_TRY(expr)        \
  do {                         \
    int autoq_st_ = (expr);    \
    if (autoq_st_ != 0)        \
      return autoq_st_;        \
  } while (0)

#define AUTOQ_CUDA(op, call)                  \
  do {                                        \
    cudaError_t autoq_e_ = (call);            \
    if (autoq_e_ != cudaSuccess)              \
      return autoq_fail_cuda(autoq_e_, (op)); \
  } while (0)

// Elements per 16-byte vector for each dtype.
__host__ __device__ constexpr int autoq_vec_elems(int dtype) { return dtype == AUTOQ_F32 ? 4 : 8; }
__host__ __device__ constexpr int autoq_elem_bytes(int dtype) { return dtype == AUTOQ_F32 ? 4 : 2; }

// Exact conversions (every F16/BF16 value is a float32).
__device__ __forceinline__ float autoq_f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float autoq_bf16_to_f32(uint16_t b) { return __uint_as_float(((uint32_t)b) << 16); }

template <int DT>
__device__ __forceinline__ float autoq_load1(const void *p, int64_t i) {
  if (DT == AUTOQ_F32) return ((const float *)p)[i];
  uint16_t h = ((const uint16_t *)p)[i];
  return DT == AUTOQ_F16 ? autoq_f16_to_f32(h) : autoq_bf16_to_f32(h);
}

// Loads the vi-th 16-byte vector (4 F32 or 8 F16/BF16 elements) into out[0..vec).
template <int DT>
__device__ __forceinline__ void autoq_load_vec(const void *p, int64_t vi, float *out) {
  uint4 v = __ldg(((const uint4 *)p) + vi);
  if (DT == AUTOQ_F32) {
    out[0] = __uint_as_float(v.x);
    out[1] = __uint_as_float(v.y);
    out[2] = __uint_as_float(v.z);
    out[3] = __uint_as_float(v.w);
  } else {
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
      uint16_t a = (uint16_t)(w[k] & 0xffffu), b = (uint16_t)(w[k] >> 16);
      if (DT == AUTOQ_F16) {
        out[2 * k] = autoq_f16_to_f32(a);
        out[2 * k + 1] = autoq_f16_to_f32(b);
      } else {
        out[2 * k] = autoq_bf16_to_f32(a);
        out[2 * k + 1] = autoq_bf16_to_f32(b);
      }
    }
  }
}

__device__ __forceinline__ bool autoq_is_finite_bits(float x) {
  return (__float_as_uint(x) & 0x7fffffffu) < 0x7f800000u;
}

// quant.Scheme.ComputeParams, bit for bit (float32, round-to-nearest intrinsics so that no
// contraction into fma can happen).
__device__ __forceinline__ void autoq_compute_params_dev(float lo, float hi, int bits, int sym,
                                                         float *scale, int32_t *zero) {
  if (sym) {
    // float32(math.Max(|lo|, |hi|)): exact, NaN propagates.
    float a = fabsf(lo), b = fabsf(hi);
    float amax = (a != a || b != b) ? __int_as_float(0x7fc00000) : (a > b ? a : b);
    if (amax == 0.0f) {
      *scale = 1.0f;
      *zero = 0;
      return;
    }
    float denom = (float)(1 << (bits - 1)) - 0.5f; // exact: 127.5 or 7.5
    float sc = __fdiv_rn(amax, denom);
    // amax a few subnormals: the scale underflows to 0; quant treats the group as zeros.
    *scale = sc == 0.0f ? 1.0f : sc;
    *zero = 0;
    return;
  }
  if (lo > 0.0f) lo = 0.0f;
  if (hi < 0.0f) hi = 0.0f;
  int qmax = (1 << bits) - 1;
  if (hi == lo) {
    *scale = 1.0f;
    *zero = 0;
    return;
  }
  float s = __fdiv_rn(__fsub_rn(hi, lo), (float)qmax);
  if (s == 0.0f) { // hi-lo a few subnormals: the scale underflows; treated as zeros
    *scale = 1.0f;
    *zero = 0;
    return;
  }
  float z = rintf(__fdiv_rn(-lo, s));
  if (z < 0.0f) z = 0.0f;
  if (z > (float)qmax) z = (float)qmax;
  *scale = s;
  *zero = (int32_t)z;
}

// quant.Scheme.QuantizeValue: clamp(rne(x/scale) + zero, QRange), float32.
__device__ __forceinline__ int32_t autoq_quantize_value(float x, float scale, int32_t zero, int32_t qlo,
                                                        int32_t qhi) {
  float q = __fadd_rn(rintf(__fdiv_rn(x, scale)), (float)zero);
  if (q < (float)qlo) return qlo;
  if (q > (float)qhi) return qhi;
  return (int32_t)q;
}

// quant.DequantizeValue: float32(q - zero) * scale.
__device__ __forceinline__ float autoq_dequantize_value(int32_t q, float scale, int32_t zero) {
  return __fmul_rn((float)(q - zero), scale);
}
