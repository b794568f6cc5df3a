// act_quant.cu: activation quantization to int8 for the W8A8 GEMM.
//
// Data layout: x is [M, K] row-major F16 or BF16, q is [M, K] int8, scales is [M] float32.
// Thread mapping: one 256-thread block per row (token). Pass 1: each thread takes 16-byte
// vectors (8 elements) k = 8*(tid + 256*i), keeps its running max |x|; a warp shuffle then
// a shared-memory step reduce the row's absmax (max is exact, so the order does not
// matter). Pass 2 re-reads the row (L1/L2 resident) and writes 8 int8 per vector as one
// 8-byte store.
//
// Arithmetic (bit-exact with quant.QuantizeActivationsPerToken / QuantizeActivationsStatic):
// scale = amax / 127 with an IEEE division (__fdiv_rn; 1 when amax == 0), q = clamp(
// rint(x / scale), -127, 127) with __fdiv_rn and rintf (round half to even), never a
// reciprocal multiply.
#include "autoq_gemm.h"
#include "common.cuh"

namespace {

constexpr int kActThreads = 256;

template <int DT>
__device__ __forceinline__ void load8(const void *x, int64_t vi, float *v) {
  autoq_load_vec<DT>(x, vi, v);
}

__device__ __forceinline__ int8_t quant1(float x, float scale) { return autoq_act_quant1(x, scale); }

__device__ __forceinline__ void quant_store8(int8_t *q, int64_t off, const float *v, float scale) {
  uint32_t lo = 0, hi = 0;
#pragma unroll
  for (int j = 0; j < 4; j++) lo |= ((uint32_t)(uint8_t)quant1(v[j], scale)) << (8 * j);
#pragma unroll
  for (int j = 0; j < 4; j++) hi |= ((uint32_t)(uint8_t)quant1(v[4 + j], scale)) << (8 * j);
  *reinterpret_cast<uint2 *>(q + off) = make_uint2(lo, hi);
}

template <int DT>
__global__ void __launch_bounds__(kActThreads) act_quant_per_token_kernel(const void *x, int64_t K,
                                                                          int8_t *q, float *scales) {
  const int64_t row = blockIdx.x;
  const int64_t vecs = K / 8, base = row * vecs;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < vecs; i += kActThreads) {
    float v[8];
    load8<DT>(x, base + i, v);
#pragma unroll
    for (int j = 0; j < 8; j++) amax = fmaxf(amax, fabsf(v[j]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  __shared__ float warp_max[kActThreads / 32];
  __shared__ float row_scale;
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = warp_max[0];
    for (int w = 1; w < kActThreads / 32; w++) m = fmaxf(m, warp_max[w]);
    float s = m == 0.0f ? 1.0f : __fdiv_rn(m, 127.0f);
    row_scale = s;
    scales[row] = s;
  }
  __syncthreads();
  const float s = row_scale;
  for (int64_t i = threadIdx.x; i < vecs; i += kActThreads) {
    float v[8];
    load8<DT>(x, base + i, v);
    quant_store8(q, (base + i) * 8, v, s);
  }
}

template <int DT>
__global__ void __launch_bounds__(kActThreads) act_quant_static_kernel(const void *x, int64_t nvec,
                                                                       float scale, int8_t *q) {
  for (int64_t i = blockIdx.x * (int64_t)kActThreads + threadIdx.x; i < nvec;
       i += (int64_t)gridDim.x * kActThreads) {
    float v[8];
    load8<DT>(x, i, v);
    quant_store8(q, i * 8, v, scale);
  }
}

int check_act_args(const char *op, const void *x, int dtype, int64_t M, int64_t K, const void *q) {
  if (dtype != AUTOQ_F16 && dtype != AUTOQ_BF16)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: dtype %d: activations must be F16 (2) or BF16 (3)", op, dtype);
  if (M < 1 || K < 8 || K % 8 != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape [%lld, %lld]: need M >= 1 and K a positive multiple of 8", op,
                           (long long)M, (long long)K);
  if (M > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: M = %lld exceeds the grid limit 2^31-1", op, (long long)M);
  if (x == nullptr || q == nullptr || ((uintptr_t)x & 15) != 0 || ((uintptr_t)q & 7) != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: x must be non-NULL and 16-byte aligned, q non-NULL and 8-byte aligned",
                           op);
  return 0;
}

// Makes dev current and launches the F16 or the BF16 instance of a kernel (the dtype
// checked) with blocks x kActThreads threads.
template <class... P, class... A>
int launch_dtype(int dev, int dtype, void (*f16)(P...), void (*bf16)(P...), unsigned blocks, void *stream,
                 const char *op, const char *kernel, A... args) {
  AUTOQ_TRY(autoq_use_device(dev, op));
  auto kern = dtype == AUTOQ_F16 ? f16 : bf16;
  kern<<<blocks, kActThreads, 0, (cudaStream_t)stream>>>(args...);
  return autoq_check_launch(op, kernel);
}

} // namespace

extern "C" int autoq_act_quant_per_token(int dev, const void *x, int dtype, int64_t M, int64_t K, int8_t *q,
                                         float *scales, void *stream) {
  const char *op = "autoq_act_quant_per_token";
  AUTOQ_TRY(check_act_args(op, x, dtype, M, K, q));
  if (scales == nullptr) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: scales is NULL", op);
  return launch_dtype(dev, dtype, act_quant_per_token_kernel<AUTOQ_F16>, act_quant_per_token_kernel<AUTOQ_BF16>,
                      (unsigned)M, stream, op, "act_quant_per_token_kernel", x, K, q, scales);
}

extern "C" int autoq_act_quant_static(int dev, const void *x, int dtype, int64_t M, int64_t K, float scale,
                                      int8_t *q, void *stream) {
  const char *op = "autoq_act_quant_static";
  AUTOQ_TRY(check_act_args(op, x, dtype, M, K, q));
  if (!(scale > 0.0f) || scale != scale || scale > 3.0e38f)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: scale %g must be positive and finite", op, (double)scale);
  const int64_t nvec = M * K / 8;
  int64_t blocks = (nvec + kActThreads - 1) / kActThreads;
  if (blocks > 65535) blocks = 65535;
  return launch_dtype(dev, dtype, act_quant_static_kernel<AUTOQ_F16>, act_quant_static_kernel<AUTOQ_BF16>,
                      (unsigned)blocks, stream, op, "act_quant_static_kernel", x, nvec, scale, q);
}
