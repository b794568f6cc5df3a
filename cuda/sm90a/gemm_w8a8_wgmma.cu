// gemm_w8a8_wgmma.cu: the sm_90a W8A8 GEMM ("wgmma-tma"): TMA (cp.async.bulk.tensor) loads of
// 128 x 128-byte tiles of A and W into a 4-stage shared-memory ring completed on mbarriers,
// wgmma.mma_async m64n128k32 s8 x s8 -> s32 from both operands in shared memory, and the same
// fused scale epilogue as gemm_w8a8.cu (w8a8_store_pair: f16(float(acc) * a_scale * w_scale
// (+ bias)), each op rounded once). Integer accumulation is exact, so the outputs equal
// quant.GemmW8A8's rounded to F16 exactly as the mma.sync kernel's do.
//
// Built only by the CMake option AUTOQ_SM90A (ON where nvcc >= 12: wgmma and the bulk tensor
// copy need PTX ISA 8.0 and the sm_90a target), as its own object library, so that a
// compile failure here never breaks the rest of the library (scripts/gpu-check.sh builds this
// target first and reconfigures without it when it fails). Runs only on compute capability
// 9.0 (autoq_gemm_w8a8_wgmma_available).
//
// ---- Block ----
// One warpgroup (128 threads) computes a 128 x 128 output tile: two m64n128k32 wgmmas per
// 32 bytes of K (rows 0-63 and 64-127 of the A tile, the same W tile), 128 int32 accumulators
// per thread. Thread 0 issues the TMA loads (A box 128 rows x 128 bytes, W box likewise; rows
// or K past the edge are zero-filled, which adds nothing) S = 4 stages ahead; every thread
// waits on the stage's mbarrier (phase parity), the warpgroup issues the 8 wgmmas of the stage,
// waits for them (wgmma.wait_group 0), and after a barrier thread 0 refills the slot. Tiles are
// 128B-swizzled by TMA and described to wgmma as K-major SWIZZLE_128B (stride between 8-row
// groups 1024 bytes); the 32-byte K steps inside a 128-byte row advance the start address.
//
// Prediction (H100, before any run): M >= 1024 is compute-bound; wgmma int8 peaks near
// 1,900 TOPS dense, this single-warpgroup, wait-per-stage pipeline should reach 40-60% of it
// (~800-1,100 TOPS): 4096 x 4096 x 1024 in ~35-45 us against torch._int_mm's 52 us (run 1,
// o_proj) and cuBLAS FP16's 47 us; below torch._int_mm would point at the serialised
// wait_group 0 (next step: a producer warp and two consumer warpgroups, ping-pong).
#include <cuda.h>

#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"

namespace {

constexpr int kBM = 128, kBN = 128, kBK = 128, kStages = 4, kThreads = 128;
constexpr int kTileBytes = kBM * kBK; // A and W tiles are the same size (16 KB)
constexpr int kSmem = kStages * 2 * kTileBytes + 1024 /* alignment */ + 64 /* barriers */;

struct WgArgs {
  const float *a_scales, *w_scales, *bias;
  __half *out;
  int32_t *out_i32;
  int M, N, K;
};

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  // The label is local to the braces' scope, so every inlined copy may reuse it.
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "AUTOQ_MBAR_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra AUTOQ_MBAR_WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap *map, uint32_t bar, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::
                   "r"(dst),
               "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1)
               : "memory");
}
// K-major, 128-byte swizzle: start address >> 4, leading offset 1 (unused), stride 1024 >> 4.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }

// d (64 int32 per thread) += A (64 x 32 bytes at da) x W (128 x 32 bytes at db)^T (scale-d
// true: accumulate; the accumulators start at zero).
__device__ __forceinline__ void wgmma_m64n128k32(int32_t *d, uint64_t da, uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred acc;\n"
      "setp.ne.b32 acc, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, acc;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]),
        "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]),
        "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]),
        "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]),
        "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]),
        "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]),
        "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]),
        "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
      : "l"(da), "l"(db), "r"(1));
}

__global__ void __launch_bounds__(kThreads, 1) gemm_w8a8_wgmma_kernel(const __grid_constant__ CUtensorMap tmA,
                                                                     const __grid_constant__ CUtensorMap tmW, WgArgs p) {
  extern __shared__ uint8_t smem_raw[];
  // TMA's 128-byte swizzle repeats every 1024 bytes: stage tiles start 1024-aligned.
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const uint32_t bars = base + kStages * 2 * kTileBytes; // kStages mbarriers of 8 bytes
  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int nk = (p.K + kBK - 1) / kBK;
  auto a_tile = [&](int s) { return base + s * 2 * kTileBytes; };
  auto w_tile = [&](int s) { return base + s * 2 * kTileBytes + kTileBytes; };

  if (tid == 0) {
    for (int s = 0; s < kStages; s++) mbar_init(bars + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  auto issue = [&](int kt) {
    const int s = kt % kStages;
    mbar_expect_tx(bars + 8 * s, 2 * kTileBytes);
    tma_load(a_tile(s), &tmA, bars + 8 * s, kt * kBK, m0);
    tma_load(w_tile(s), &tmW, bars + 8 * s, kt * kBK, n0);
  };
  if (tid == 0)
    for (int kt = 0; kt < kStages && kt < nk; kt++) issue(kt);

  int32_t acc[2][64];
#pragma unroll
  for (int h = 0; h < 2; h++)
#pragma unroll
    for (int i = 0; i < 64; i++) acc[h][i] = 0;

  for (int kt = 0; kt < nk; kt++) {
    const int s = kt % kStages;
    mbar_wait(bars + 8 * s, (uint32_t)((kt / kStages) & 1));
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 32; kk++) {
      const uint64_t db = desc_sw128(w_tile(s) + 32 * kk);
      wgmma_m64n128k32(acc[0], desc_sw128(a_tile(s) + 32 * kk), db);
      wgmma_m64n128k32(acc[1], desc_sw128(a_tile(s) + 64 * kBK + 32 * kk), db);
    }
    wgmma_commit();
    wgmma_wait0();
    __syncthreads(); // every thread's wgmmas of this slot are done: it can be refilled
    if (tid == 0 && kt + kStages < nk) issue(kt + kStages);
  }

  // Accumulator i of an m64nN wgmma, thread t: row 16*(t/32) + (t%32)/4 + 8*((i/2)%2),
  // column 8*(i/4) + 2*(t%4) + (i%2); pairs (i, i+1), i even, are adjacent columns.
  const int warp = tid >> 5, lane = tid & 31;
#pragma unroll
  for (int h = 0; h < 2; h++)
#pragma unroll
    for (int i = 0; i < 64; i += 2) {
      const int row = m0 + 64 * h + 16 * warp + (lane >> 2) + 8 * ((i >> 1) & 1);
      const int col = n0 + 8 * (i >> 2) + 2 * (lane & 3);
      if (row < p.M && col < p.N) w8a8_store_pair(p, row, col, acc[h][i], acc[h][i + 1]);
    }
}

typedef CUresult (*EncodeTiled)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *, const cuuint64_t *,
                                const cuuint64_t *, const cuuint32_t *, const cuuint32_t *, CUtensorMapInterleave,
                                CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// cuTensorMapEncodeTiled from the driver through the runtime (no -lcuda).
EncodeTiled encode_fn(const char *op) {
  static EncodeTiled fn = nullptr;
  if (fn != nullptr) return fn;
  void *p = nullptr;
  cudaDriverEntryPointQueryResult q{};
#if CUDART_VERSION >= 12050
  cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
#else
  cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &q);
#endif
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || p == nullptr) {
    autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cuTensorMapEncodeTiled not found in the driver (%s)", op,
                    cudaGetErrorName(e));
    return nullptr;
  }
  fn = (EncodeTiled)p;
  return fn;
}

// A 2-D int8 tensor [rows, cols] (cols contiguous) as 128 x 128-byte boxes, 128B-swizzled,
// zero fill past the edges.
int make_map(const char *op, CUtensorMap *map, const int8_t *ptr, int64_t rows, int64_t cols) {
  EncodeTiled enc = encode_fn(op);
  if (enc == nullptr) return AUTOQ_ERR_UNSUPPORTED;
  const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
  const cuuint64_t strides[1] = {(cuuint64_t)cols};
  const cuuint32_t box[2] = {kBK, kBM};
  const cuuint32_t estr[2] = {1, 1};
  const CUresult r = enc(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, (void *)ptr, dims, strides, box, estr,
                         CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cuTensorMapEncodeTiled([%lld, %lld]) failed with CUresult %d", op,
                           (long long)rows, (long long)cols, (int)r);
  return AUTOQ_OK;
}

int run(int dev, const char *op, const int8_t *A, const int8_t *W, WgArgs a, int64_t M, int64_t N, int64_t K,
        void *stream) {
  if (M < 1 || N < 8 || K < 16 || N % 8 != 0 || K % 16 != 0 || M > (1LL << 30) || N > (1LL << 30) || K > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld: need N %% 8 == 0, K %% 16 == 0", op,
                           (long long)M, (long long)N, (long long)K);
  if (A == nullptr || W == nullptr || ((uintptr_t)A & 15) || ((uintptr_t)W & 15))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: A and W must be non-NULL 16-byte aligned device pointers", op);
  if ((M + kBM - 1) / kBM > 65535)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: M=%lld exceeds the grid", op, (long long)M);
  AUTOQ_TRY(autoq_use_device(dev, op));
  int major = 0, minor = 0;
  AUTOQ_CUDA(op, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  AUTOQ_CUDA(op, cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  if (major != 9 || minor != 0)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: the sm_90a kernel runs on compute capability 9.0 only (device %d is %d.%d)",
                           op, dev, major, minor);
  CUtensorMap ta, tw;
  AUTOQ_TRY(make_map(op, &ta, A, M, K));
  AUTOQ_TRY(make_map(op, &tw, W, N, K));
  static bool configured[64];
  if (dev >= 0 && dev < 64 && !configured[dev]) {
    AUTOQ_CUDA(op, cudaFuncSetAttribute(gemm_w8a8_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    configured[dev] = true;
  }
  a.M = (int)M, a.N = (int)N, a.K = (int)K;
  const dim3 grid((unsigned)((N + kBN - 1) / kBN), (unsigned)((M + kBM - 1) / kBM));
  gemm_w8a8_wgmma_kernel<<<grid, kThreads, kSmem, (cudaStream_t)stream>>>(ta, tw, a);
  return autoq_check_launch(op, "gemm_w8a8_wgmma_kernel");
}

} // namespace

extern "C" int autoq_gemm_w8a8_wgmma_available(int dev) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return 0;
  return major == 9 && minor == 0;
}

extern "C" int autoq_gemm_w8a8_wgmma(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                                     const float *w_scales, const float *bias, void *out_f16, int64_t M, int64_t N,
                                     int64_t K, void *stream) {
  const char *op = "autoq_gemm_w8a8_wgmma";
  if (a_scales == nullptr || w_scales == nullptr || out_f16 == nullptr || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: a_scales, w_scales and a 4-byte aligned out must be non-NULL", op);
  WgArgs a{};
  a.a_scales = a_scales, a.w_scales = w_scales, a.bias = bias, a.out = (__half *)out_f16;
  return run(dev, op, A, W, a, M, N, K, stream);
}

extern "C" int autoq_gemm_w8a8_wgmma_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32, int64_t M,
                                         int64_t N, int64_t K, void *stream) {
  const char *op = "autoq_gemm_w8a8_wgmma_i32";
  if (out_i32 == nullptr || ((uintptr_t)out_i32 & 7))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: out_i32 must be a non-NULL 8-byte aligned device pointer", op);
  WgArgs a{};
  a.out_i32 = out_i32;
  return run(dev, op, A, W, a, M, N, K, stream);
}
