// gemm_w8a8_v3.cu: W8A8 for small M (1..16), one launch per GEMM, no workspace.
//
// Same function, same row-major int8 weights W [N, K] (QTensor.Data as stored, no re-layout)
// and the same epilogue (w8a8_store_pair of gemm_common.cuh: gemm_w8a8.cu's float32 ops): the int32
// accumulators are exact whatever the summation order, so the F16 outputs are bit-identical
// to v1's and v2's (and to f16(quant.GemmW8A8)).
//
// Why: v1/v2 split K across blocks and reduce partials through the workspace (write, fence,
// atomic counter, re-read by the last block: three dependent L2 round trips after the
// stream) and v2 stages the activation slice in shared memory behind a barrier before the
// first MMA. v3 gives a block 16 output columns and the WHOLE K (N/16 blocks: 256 for
// N = 4096, about two per SM): its 8 warps split K and add their int32 sums in shared memory.
// One launch, no partials, no counters, no memset.
//
// ---- K permutation (gemm_w8a8_v2.cu's) ----
// Lane (g, t) loads the 16 contiguous bytes W[n][64s + 16t .. +15] of K step s for each of
// its two n-tiles (n = col0 + 8j + g) and runs two mma.m16n8k32 on them (words 0,1 then 2,3 as
// b0,b1); the matching A fragment is the 16 contiguous bytes A[g][64s + 16t ..] (rows g + 8:
// a1, a3, M > 8 only), read straight from global memory through L1 (__ldg) - every block of
// an SM reads the same activations. Bytes beyond K read as zero (K % 16 == 0: a lane's 16
// bytes are wholly inside or outside).
//
// ---- Thread mapping ----
// Block = 8 warps; blockIdx.y = 16 output columns, blockIdx.x = 16-row chunk of M (M > 16:
// ceil(M/16) chunks re-reading the weights: correct, not fast). Warp w takes K steps w, w+8,
// ..., kU steps (2 kU 16-byte weight vectors, 4 KB per warp) in flight as a register ring
// loaded with ld.global.nc.L1::no_allocate.
//
// ---- Prediction, written before the first GPU run ----
// With gemm_w4a16_v3.cu's model (F ~ 4.5 us, ~2.8 TB/s): llama2-7b M = 1 o 10.5 us (1.7x),
// qkv 22.5 (1.85x), gate_up 36.7 (1.85x), down 20.6 (1.8x) over cuBLAS F16 (v1: 1.45-1.77x).
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kU = 4, kNT = 2, kCols = kNT * 8;


struct V3Args {
  const int8_t *A, *W;
  const float *a_scales, *w_scales, *bias;
  __half *out;      // F16 output
  int32_t *out_i32; // or the int32 accumulators (debug entry point)
  int M, N, K;
};


template <int MR>
__global__ void __launch_bounds__(kThreads, 2) gemm_w8a8_v3_kernel(V3Args p) {
  __shared__ int red[kWarps][MR][kCols];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  // blockIdx.x: the 16-row chunk, fastest, so that the chunks of a column group share its
  // weights in L2; blockIdx.y: the column group.
  const int col0 = blockIdx.y * kCols, m0 = blockIdx.x * 16;
  const int rows = min(16, p.M - m0);
  const int ksteps = (p.K + 63) / 64;
  const int n_it = warp < ksteps ? (ksteps - warp + kWarps - 1) / kWarps : 0;

  const int8_t *wrow[kNT];
  bool nok[kNT];
#pragma unroll
  for (int j = 0; j < kNT; j++) {
    const int n = col0 + 8 * j + g;
    nok[j] = n < p.N; // N % 8 == 0: an n-tile is wholly valid or not
    wrow[j] = p.W + (int64_t)(nok[j] ? n : 0) * p.K + 16 * t;
  }
  const uint4 zero4 = make_uint4(0, 0, 0, 0);
  auto kof = [&](int it) { return (warp + it * kWarps) * 64; }; // + 16t: this lane's bytes
  uint4 ring[kU][kNT];
  auto issue = [&](int u, int it) {
    const int k = kof(it);
    const bool kok = k + 16 * t < p.K;
#pragma unroll
    for (int j = 0; j < kNT; j++) ring[u][j] = (kok && nok[j]) ? ld_stream(wrow[j] + k) : zero4;
  };
#pragma unroll
  for (int u = 0; u < kU; u++)
    if (u < n_it) issue(u, u);

  int acc[kNT][4];
#pragma unroll
  for (int j = 0; j < kNT; j++)
#pragma unroll
    for (int v = 0; v < 4; v++) acc[j][v] = 0;

  const bool lo_ok = g < rows, hi_ok = MR == 16 && g + 8 < rows;
  const int8_t *alo = p.A + (int64_t)(m0 + (lo_ok ? g : 0)) * p.K + 16 * t;
  const int8_t *ahi = p.A + (int64_t)(m0 + (hi_ok ? g + 8 : 0)) * p.K + 16 * t;

  for (int i0 = 0; i0 < n_it; i0 += kU) {
#pragma unroll
    for (int u = 0; u < kU; u++) {
      const int it = i0 + u;
      if (it < n_it) {
        const int k = kof(it);
        const bool kok = k + 16 * t < p.K;
        const uint4 a = (lo_ok && kok) ? __ldg(reinterpret_cast<const uint4 *>(alo + k)) : zero4;
        uint4 ah = zero4;
        if (MR == 16) ah = (hi_ok && kok) ? __ldg(reinterpret_cast<const uint4 *>(ahi + k)) : zero4;
        uint4 w[kNT];
#pragma unroll
        for (int j = 0; j < kNT; j++) w[j] = ring[u][j];
        if (it + kU < n_it) issue(u, it + kU);
#pragma unroll
        for (int j = 0; j < kNT; j++) {
          mma_s8(acc[j], a.x, ah.x, a.y, ah.y, w[j].x, w[j].y);
          mma_s8(acc[j], a.z, ah.z, a.w, ah.w, w[j].z, w[j].w);
        }
      }
    }
  }

#pragma unroll
  for (int j = 0; j < kNT; j++) {
    const int c = j * 8 + 2 * t;
    red[warp][g][c] = acc[j][0];
    red[warp][g][c + 1] = acc[j][1];
    if (MR == 16) {
      red[warp][g + 8][c] = acc[j][2];
      red[warp][g + 8][c + 1] = acc[j][3];
    }
  }
  __syncthreads();
  if (tid < rows * (kCols / 2)) {
    const int r = tid / (kCols / 2), c = (tid % (kCols / 2)) * 2, col = col0 + c;
    if (col < p.N) {
      int v0 = 0, v1 = 0;
#pragma unroll
      for (int w = 0; w < kWarps; w++) {
        v0 += red[w][r][c];
        v1 += red[w][r][c + 1];
      }
      w8a8_store_pair(p, m0 + r, col, v0, v1);
    }
  }
}

int run(int dev, const char *op, V3Args a, int64_t M, int64_t N, int64_t K, void *stream) {
  if (M < 1 || N < 8 || K < 16 || N % 8 != 0 || K % 16 != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: shape M=%lld N=%lld K=%lld: need M >= 1, N a positive multiple of 8, K a positive "
                           "multiple of 16",
                           op, (long long)M, (long long)N, (long long)K);
  if (N > 16 * 65535LL || K > (1LL << 30) || M > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld too large (N <= 1048560, K and M <= 2^30)", op,
                           (long long)M, (long long)N, (long long)K);
  if (a.A == nullptr || a.W == nullptr || ((uintptr_t)a.A & 15) || ((uintptr_t)a.W & 15))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: A and W must be non-NULL 16-byte aligned device pointers", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  a.M = (int)M, a.N = (int)N, a.K = (int)K;
  const dim3 grid((unsigned)((M + 15) / 16), (unsigned)((N + kCols - 1) / kCols));
  cudaStream_t st = (cudaStream_t)stream;
  if (M <= 8)
    gemm_w8a8_v3_kernel<8><<<grid, kThreads, 0, st>>>(a);
  else
    gemm_w8a8_v3_kernel<16><<<grid, kThreads, 0, st>>>(a);
  return autoq_check_launch(op, "gemm_w8a8_v3_kernel");
}

} // namespace

extern "C" int autoq_gemm_w8a8_v3(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                                  const float *w_scales, const float *bias, void *out_f16, int64_t M, int64_t N,
                                  int64_t K, void *stream) {
  const char *op = "autoq_gemm_w8a8_v3";
  if (a_scales == nullptr || w_scales == nullptr || out_f16 == nullptr || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: a_scales, w_scales and a 4-byte aligned out must be non-NULL", op);
  V3Args a{};
  a.A = A, a.W = W, a.a_scales = a_scales, a.w_scales = w_scales, a.bias = bias;
  a.out = (__half *)out_f16;
  return run(dev, op, a, M, N, K, stream);
}

extern "C" int autoq_gemm_w8a8_v3_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32, int64_t M,
                                      int64_t N, int64_t K, void *stream) {
  const char *op = "autoq_gemm_w8a8_v3_i32";
  if (out_i32 == nullptr || ((uintptr_t)out_i32 & 7))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: out_i32 must be a non-NULL 8-byte aligned device pointer", op);
  V3Args a{};
  a.A = A, a.W = W, a.out_i32 = out_i32;
  return run(dev, op, a, M, N, K, stream);
}
