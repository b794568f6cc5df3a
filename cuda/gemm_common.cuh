// gemm_common.cuh: device and host helpers shared by the GEMM kernels (gemm_w4a16_*.cu,
// gemm_w8a8.cu). Only the building blocks live here: PTX wrappers (cp.async, ldmatrix,
// mma.sync, streaming loads, lop3), the swizzle of the 128-byte shared-memory rows, the
// F16 epilogue of W4A16 and the dequantizing epilogue of W8A8, the split-K workspace
// constants and the SM count. Each kernel keeps its own loop structure in its own file.
// Everything is static / inline: every .cu that includes this gets its own copy, exactly
// as when each file defined them itself.
#pragma once

#include "common.cuh"

// Split-K workspace: a fixed region of per-tile counters at offset 0 (the same size in every
// GEMM, so a workspace shared by calls of different shapes and kernels never has partial
// sums where another call expects zeroed counters), then the partial sums.
static constexpr int kMaxSplitTiles = 4096;
static constexpr size_t kCounterBytes = kMaxSplitTiles * sizeof(int);

// ---- PTX wrappers ----
static __device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
static __device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
static __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

static __device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2,
                                                   uint32_t &r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}
// The same into r[0..3].
static __device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t *r) {
  ldmatrix_x4(addr, r[0], r[1], r[2], r[3]);
}

// Byte offset of chunk c of row r in a swizzled 128-byte-row tile: chunk c is stored at
// chunk position c ^ (r & 7), so the 8 rows an ldmatrix phase reads hit 8 bank groups.
static __device__ __forceinline__ uint32_t swz(int r, int c) { return (uint32_t)(r * 128 + ((c ^ (r & 7)) << 4)); }

// A 16-byte load that bypasses L1 allocation (weights are read once). A template on the
// pointee type, not a const void * parameter: a kernel whose uint4 pointers pass through
// void * compiles to different code (one register fewer, other address arithmetic), and
// this header must not change any kernel's code.
template <class T>
static __device__ __forceinline__ uint4 ld_stream(const T *p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// c += a * b for one mma.sync whose A fragment is 4 registers, B 2 and C/D 4 accumulators of
// type T in place (asm constraint CT): NAME(c, a0..a3, b0, b1) and NAME(c, a[0..3], b0, b1).
#define AUTOQ_MMA_SYNC(NAME, T, CT, SHAPE_TYPES)                                                               \
  static __device__ __forceinline__ void NAME(T *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,        \
                                              uint32_t b0, uint32_t b1) {                                      \
    asm volatile("mma.sync.aligned." SHAPE_TYPES " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"   \
                 : CT(c[0]), CT(c[1]), CT(c[2]), CT(c[3])                                                      \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));                                      \
  }                                                                                                            \
  static __device__ __forceinline__ void NAME(T *c, const uint32_t *a, uint32_t b0, uint32_t b1) {             \
    NAME(c, a[0], a[1], a[2], a[3], b0, b1);                                                                   \
  }
// mma.m16n8k16 F16 x F16 -> F32.
AUTOQ_MMA_SYNC(mma_f16, float, "+f", "m16n8k16.row.col.f32.f16.f16.f32")
// mma.m16n8k32 s8 x s8 -> s32 (exact).
AUTOQ_MMA_SYNC(mma_s8, int, "+r", "m16n8k32.row.col.s32.s8.s8.s32")
#undef AUTOQ_MMA_SYNC

// (a & b) | c in one instruction (the int4 -> F16 exponent trick of the W4A16 kernels).
static __device__ __forceinline__ uint32_t lop3_and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
static __device__ __forceinline__ uint32_t h2u(__half2 h) { return *reinterpret_cast<uint32_t *>(&h); }
static __device__ __forceinline__ __half2 u2h(uint32_t u) { return *reinterpret_cast<__half2 *>(&u); }

// The zero-point terms of the W4A16 dequantization of one packed word (n-tile 2j in the low
// halves, 2j+1 in the high): zl = 1024 + z, subtracted from the low nibbles' 1024 + u, and
// zh = -(64 + z), added to the high nibbles' (1024 + 16u) / 16. zr holds the F16 zeros of the
// two n-tiles (asymmetric); symmetric weights have z = 8.
template <bool ASYM>
static __device__ __forceinline__ void w4_zero_terms(uint32_t zr, __half2 &zl_lo, __half2 &zh_lo, __half2 &zl_hi,
                                                     __half2 &zh_hi) {
  if (ASYM) {
    const __half2 z_pair = u2h(zr);
    const __half2 zlo = __low2half2(z_pair), zhi = __high2half2(z_pair);
    const __half2 c1024 = u2h(0x64006400u), c64 = u2h(0x54005400u);
    zl_lo = __hadd2(zlo, c1024), zl_hi = __hadd2(zhi, c1024);
    zh_lo = __hneg2(__hadd2(zlo, c64)), zh_hi = __hneg2(__hadd2(zhi, c64));
  } else {
    zl_lo = zl_hi = u2h(0x64086408u); // 1032 = 1024 + 8
    zh_lo = zh_hi = u2h(0xD480D480u); // -72 = -(64 + 8)
  }
}

// ---- cp.async ring ----
// A STAGES-deep ring of shared-memory stages: load(slot, step) issues the cp.async copies of
// K step `step` into ring slot `slot`; a block runs steps first .. first+n-1, one commit group
// per step (an empty group past the end keeps the wait counts uniform).
// Before the loop: steps first .. first+STAGES-2 into slots 0 .. STAGES-2.
template <int STAGES, class Load>
static __device__ __forceinline__ void ring_prologue(int n, int first, Load &load) {
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < n) load(s, first + s);
    cp_async_commit();
  }
}
// At the top of iteration i: waits until step i has landed for the whole block (so the slot of
// step i-1 is free), then issues step i+STAGES-1 into that slot.
template <int STAGES, class Load>
static __device__ __forceinline__ void ring_advance(int i, int n, int first, Load &load) {
  cp_async_wait<STAGES - 2>();
  __syncthreads();
  const int nxt = i + STAGES - 1;
  if (nxt < n) load(nxt % STAGES, first + nxt);
  cp_async_commit();
}

// ---- Split-K ----
// Called by every thread of a block after it wrote its partials: publishes them, counts the
// block in at *counter and returns true (in all threads, after a fence) only in the last of
// the `arrivals` blocks sharing the counter, which resets it to 0 for the next call.
static __device__ __forceinline__ bool splitk_last_block(int *counter, int arrivals) {
  __threadfence();
  __syncthreads();
  __shared__ int is_last;
  if (threadIdx.x == 0) {
    const int prev = atomicAdd(counter, 1);
    is_last = prev == arrivals - 1;
    if (is_last) *counter = 0; // every block has arrived: reset for the next call
  }
  __syncthreads();
  if (!is_last) return false;
  __threadfence();
  return true;
}

// ---- W4A16 operands ----
// What every W4A16 kernel on the tiled layout takes: its argument struct derives from this
// (or, where deriving changes the kernel's code, declares the same members first) and adds
// its own bookkeeping after them.
struct W4A16Operands {
  const __half *A;
  const uint4 *W;
  const __half *scales, *zeros;
  const float *bias;
  __half *out;
  int M, N, K, group;
};
// Sets the operand members of a from an entry point's arguments (shape and pointers checked).
template <class Args>
static inline void w4a16_set_operands(Args &a, const void *A_f16, const void *W_packed, const void *scales_f16,
                                      const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                      int64_t K, int64_t group) {
  a.A = (const __half *)A_f16, a.W = (const uint4 *)W_packed;
  a.scales = (const __half *)scales_f16, a.zeros = (const __half *)zeros_f16;
  a.bias = bias, a.out = (__half *)out_f16;
  a.M = (int)M, a.N = (int)N, a.K = (int)K, a.group = (int)group;
}

// ---- Epilogues ----
// W4A16: out[row, col..col+1] = f16(v (+ bias)), F32 adds rounded to nearest.
template <class Args>
static __device__ __forceinline__ void w4a16_store_out(const Args &p, int row, int col, float v0, float v1) {
  if (p.bias != nullptr) {
    v0 = __fadd_rn(v0, p.bias[col]);
    v1 = __fadd_rn(v1, p.bias[col + 1]);
  }
  *reinterpret_cast<__half2 *>(p.out + (int64_t)row * p.N + col) = __halves2half2(__float2half_rn(v0), __float2half_rn(v1));
}

// W8A8: the int32 accumulators as they are (out_i32 set), or
// f16(float(acc) * a_scales[row] * w_scales[col] (+ bias[col])), float32 ops in that order.
template <class Args>
static __device__ __forceinline__ void w8a8_store_pair(const Args &p, int row, int col, int v0, int v1) {
  if (p.out_i32 != nullptr) {
    *reinterpret_cast<int2 *>(p.out_i32 + (int64_t)row * p.N + col) = make_int2(v0, v1);
    return;
  }
  const float as = p.a_scales[row];
  float f0 = __fmul_rn(__fmul_rn((float)v0, as), p.w_scales[col]);
  float f1 = __fmul_rn(__fmul_rn((float)v1, as), p.w_scales[col + 1]);
  if (p.bias != nullptr) {
    f0 = __fadd_rn(f0, p.bias[col]);
    f1 = __fadd_rn(f1, p.bias[col + 1]);
  }
  *reinterpret_cast<__half2 *>(p.out + (int64_t)row * p.N + col) = __halves2half2(__float2half_rn(f0), __float2half_rn(f1));
}

// ---- Host ----
// Streaming multiprocessors of device dev (cached per device; 108, an A100, if unknown).
static inline int gemm_sm_count(int dev) {
  static int cache[64];
  if (dev < 0 || dev >= 64) return 108;
  if (cache[dev] == 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) v = 108;
    cache[dev] = v;
  }
  return cache[dev];
}

// W4A16 argument checks of the tiled kernel (0, or the error set).
static inline int w4a16_check_shape(const char *op, int64_t M, int64_t N, int64_t K, int64_t group) {
  if (M < 1 || N < 64 || K < 64 || N % 64 != 0 || K % 64 != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: shape M=%lld N=%lld K=%lld: need M >= 1 and N, K positive multiples of 64", op,
                           (long long)M, (long long)N, (long long)K);
  if (group < 32 || group % 32 != 0 || K % group != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: group size %lld: need a multiple of 32 that divides K=%lld (group = K for per-channel)",
                           op, (long long)group, (long long)K);
  return AUTOQ_OK;
}
static inline int w4a16_check_pointers(const char *op, const void *A_f16, const void *W_packed,
                                       const void *scales_f16, const void *zeros_f16, const void *out_f16) {
  if (A_f16 == nullptr || W_packed == nullptr || scales_f16 == nullptr || out_f16 == nullptr ||
      ((uintptr_t)A_f16 & 15) || ((uintptr_t)W_packed & 15) || ((uintptr_t)scales_f16 & 15) ||
      ((uintptr_t)zeros_f16 & 15) || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: A, W, scales (and zeros) must be non-NULL 16-byte aligned device "
                                              "pointers, out 4-byte aligned",
                           op);
  return AUTOQ_OK;
}
