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
    float denom = (float)(1 << (bits - 1)) - 0.5f; // exact: 3.5, 7.5, ..., 127.5
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

// Point i of quant's MSE clipping grid over [lo, hi] (quant.SearchParams, SearchMSE): the
// range shrunk by r = (den - i) / den (float32 division, float32 products), ComputeParams.
__device__ __forceinline__ void autoq_grid_params(int i, int den, float lo, float hi, int bits, int sym, float *scale,
                                                  int32_t *zero) {
  const float r = __fdiv_rn((float)(den - i), (float)den);
  autoq_compute_params_dev(__fmul_rn(lo, r), __fmul_rn(hi, r), bits, sym, scale, zero);
}

// The grid point with the smallest error errs[0..n), the first on ties (strict <, as quant).
__device__ __forceinline__ int autoq_grid_best(const double *errs, int n) {
  int best = 0;
  for (int j = 1; j < n; j++)
    if (errs[j] < errs[best]) best = j;
  return best;
}

// quant.Scheme.QuantizeValue: clamp(rne(x/scale) + zero, QRange), float32.
__device__ __forceinline__ int32_t autoq_quantize_value(float x, float scale, int32_t zero, int32_t qlo,
                                                        int32_t qhi) {
  float q = __fadd_rn(rintf(__fdiv_rn(x, scale)), (float)zero);
  if (q < (float)qlo) return qlo;
  if (q > (float)qhi) return qhi;
  return (int32_t)q;
}

// Per-token int8 activation quantization of one value with its row's scale
// (quant.QuantizeActivationsPerToken; act_quant.cu and the fused model kernels share it):
// IEEE division, rint, clamp to +-127 (NaN converts to 0).
__device__ __forceinline__ int8_t autoq_act_quant1(float x, float scale) {
  float q = rintf(__fdiv_rn(x, scale));
  if (q < -127.0f) q = -127.0f;
  if (q > 127.0f) q = 127.0f;
  return (int8_t)(int)q;
}

// quant.DequantizeValue: float32(q - zero) * scale.
__device__ __forceinline__ float autoq_dequantize_value(int32_t q, float scale, int32_t zero) {
  return __fmul_rn((float)(q - zero), scale);
}

// Level storage (quant.QTensor, quant/pack.go), for every width from 3 to 8 bits: each row
// is a little-endian bit stream, element c in bits [c*bits, (c+1)*bits) (stream bit k is
// bit k%8 of byte k/8), padded with zero bits to a whole byte; fields are two's complement
// for symmetric schemes and unsigned otherwise. 8-bit levels are whole bytes and 4-bit
// levels nibbles (element 2i low); eight levels from a column that is a multiple of 8 fill
// exactly `bits` bytes (a "chunk", what the vectorised kernels store).

// Bytes of one packed row of cols levels: ceil(cols*bits/8) (quant.RowBytes).
__device__ __forceinline__ int64_t autoq_row_bytes(int64_t cols, int bits) { return (cols * bits + 7) / 8; }

// The stored field of level q: its low `bits` bits.
__device__ __forceinline__ uint32_t autoq_level_field(int32_t q, int bits) { return (uint32_t)q & ((1u << bits) - 1u); }

// Packs the fields of eight consecutive levels, element j in bits [j*bits, (j+1)*bits).
__device__ __forceinline__ uint64_t autoq_pack8(const uint32_t (&v)[8], int bits) {
  uint64_t p = 0;
#pragma unroll
  for (int j = 0; j < 8; j++) p |= (uint64_t)v[j] << (bits * j);
  return p;
}

// Stores a packed chunk at dst, its first byte (chunk k of a row whose length is a multiple
// of 8 starts at byte k*bits): 8 bytes as one uint2 (dst 8-byte aligned), 4 bytes as one
// uint32 (4-byte aligned), the other widths byte by byte (their chunks start at multiples
// of 3, 5, 6 or 7 bytes).
__device__ __forceinline__ void autoq_store_chunk(uint8_t *dst, uint64_t p, int bits) {
  if (bits == 8) {
    uint2 o;
    o.x = (uint32_t)p;
    o.y = (uint32_t)(p >> 32);
    *(uint2 *)dst = o;
  } else if (bits == 4) {
    *(uint32_t *)dst = (uint32_t)p;
  } else {
    for (int i = 0; i < bits; i++) dst[i] = (uint8_t)(p >> (8 * i));
  }
}

// The bits of element c's field (at stream bits [c*bits, (c+1)*bits)) that fall into byte
// cb of the row, in their place in that byte; elements (8*cb)/bits to (8*cb+7)/bits touch it.
__device__ __forceinline__ uint32_t autoq_field_in_byte(uint32_t field, int64_t c, int bits, int64_t cb) {
  const int s = (int)(c * bits - 8 * cb); // -7 .. 7
  return (s >= 0 ? field << s : field >> -s) & 0xffu;
}

// Byte cb of a packed row of cols levels: the fields field_of(c) of the elements that touch
// it, from (8*cb)/bits to (8*cb+7)/bits (the last element of the row at most; the padding
// bits stay 0). field_of(c) returns autoq_level_field of element c's level.
template <class FieldOf>
__device__ __forceinline__ uint32_t autoq_packed_byte(int64_t cb, int64_t cols, int bits, FieldOf field_of) {
  const int64_t c0 = 8 * cb / bits, c_last = (8 * cb + 7) / bits;
  const int64_t c1 = c_last < cols - 1 ? c_last : cols - 1;
  uint32_t out = 0;
  for (int64_t c = c0; c <= c1; c++) out |= autoq_field_in_byte(field_of(c), c, bits, cb);
  return out;
}

// Element c of a packed row, sign-extended when sym (quant's getLevel).
__device__ __forceinline__ int32_t autoq_load_level(const uint8_t *row, int64_t c, int bits, int sym) {
  const int64_t o = c * bits;
  const int sh = (int)(o & 7);
  uint32_t u = row[o >> 3];
  if (sh + bits > 8) u |= (uint32_t)row[(o >> 3) + 1] << 8;
  u = (u >> sh) & ((1u << bits) - 1u);
  if (!sym) return (int32_t)u;
  const int32_t half = 1 << (bits - 1);
  return (int32_t)(u ^ (uint32_t)half) - half;
}
