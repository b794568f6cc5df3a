// gemm_w8a8_v2.cu: W8A8 for small M (1..16), a memory-streaming variant of gemm_w8a8.cu.
//
// Same function and same epilogue (w8a8_store_pair of gemm_common.cuh, gemm_w8a8.cu's float32 ops), on
// the same row-major int8 weights W [N, K]: the int32 accumulators are exact whatever the
// summation order, so the F16 outputs are bit-identical to v1's (and to f16(quant.GemmW8A8)).
//
// ---- K permutation (why no re-layout is needed) ----
// One mma.m16n8k32 s8 takes B as (n g, logical k 4t..4t+3) in b0 and (n g, 16+4t..) in b1
// for lane 4g + t, and A as (row g / g+8, the same logical k). A dot product does not care
// which physical k a logical k is, as long as A and B agree. So lane (g, t) loads the 16
// contiguous bytes W[n0 + g][kb + 16t .. kb + 16t + 15] of a 64-wide K step (the 4 lanes of
// a row cover 64 contiguous bytes) and runs two MMAs on them: step s = 0, 1 uses words 2s
// (b0) and 2s + 1 (b1), i.e. physical k kb + 16t + 8s + 0..3 and + 4..7. The matching A
// fragment is the 16 contiguous bytes A[g][kb + 16t ..] (words 2s, 2s+1 = a0, a2 of step s),
// one 16-byte shared-memory load (rows g + 8: a1, a3, only for M > 8).
//
// ---- Thread mapping ----
// A warp streams a strip of 32 outputs (4 n-tiles of 8) over a quarter of the block's K
// range, kU K steps (4 x 16 bytes per lane each) in flight as a register ring loaded with
// ld.global.nc.L1::no_allocate.v4; a block has 8 warps = 2 strips (64 outputs) x 4 K
// quarters, whose int32 sums are added in shared memory; split-K over gridDim.y with int32
// partials in the workspace (v1's format: 16 KiB of counters, then partials) reduced by the
// last block of a column block. A (M <= 16 rows of the block's K range) is staged once in
// shared memory with a row stride = 64 mod 128 bytes (conflict-free 16-byte fragment loads),
// zero beyond K (so the K tail of a step contributes 0).
//
// ---- M > 16 ----
// The v2 entry points run gemm_w8a8.cu's tiled kernel, from M = 512 on with its 128 x 256
// tile configuration (cfg 3: 8 warps of 64 x 64, 4 stages; half the ldmatrix traffic per MMA
// of the 128 x 128 tiles autoq_gemm_w8a8 uses), and with split-K partials reduced by a
// separate grid-wide kernel instead of the last block of each tile (which reads
// rows x 128 x S partials through one block, serialised on L2 latency at M = 128).
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"

extern "C" size_t autoq_gemm_w8a8_cfg_workspace_bytes(int dev, int cfg, int64_t M, int64_t N, int64_t K);
extern "C" int autoq_gemm_w8a8_cfg(int dev, int cfg, const int8_t *A, const float *a_scales, const int8_t *W,
                                   const float *w_scales, const float *bias, void *out_f16, int32_t *out_i32,
                                   int64_t M, int64_t N, int64_t K, void *workspace, size_t workspace_bytes,
                                   void *stream, int defer_reduce);

namespace {
constexpr int kLargeTileCfg = 3;   // gemm_w8a8.cu's 128 x 256 tiles ...
constexpr int64_t kLargeTileM = 512; // ... from this M on (below: autoq_gemm_w8a8's tiles)
int large_cfg(int64_t M) { return M >= kLargeTileM ? kLargeTileCfg : -1; }

constexpr int kWarps = 8, kThreads = kWarps * 32, kKSub = 4, kStrips = 2, kNT = 4, kU = 3;
constexpr int kStripCols = kNT * 8;   // 32
constexpr int kMaxBlockSteps = 64;    // at most 4096 K per block: A slice <= 66 KB of smem
constexpr int kBlocksPerSM = 2;
constexpr int kMaxM = 16;


struct V2Args {
  const int8_t *A, *W;
  const float *a_scales, *w_scales, *bias;
  __half *out;      // F16 output (mode 0)
  int32_t *out_i32; // int32 output (mode 1)
  int M, N, K;
  int steps_per_split; // 64-wide K steps per block
  int *counters;
  int32_t *partials; // [S, M, N]
};


template <int MR>
__global__ void __launch_bounds__(kThreads, kBlocksPerSM) gemm_w8a8_v2_kernel(V2Args p) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int ksteps = (p.K + 63) / 64;
  const int col0 = (blockIdx.x * kStrips + (warp & 1)) * kStripCols; // first output of this warp
  const int bs0 = blockIdx.y * p.steps_per_split;
  const int bs1 = min(ksteps, bs0 + p.steps_per_split);
  const int nbs = bs1 - bs0;
  const int per = (nbs + kKSub - 1) / kKSub;
  const int ws0 = min(bs1, bs0 + (warp >> 1) * per);
  const int ws1 = col0 < p.N ? min(bs1, ws0 + per) : ws0;
  const int rs = ((nbs * 64 + 127) / 128) * 128 + 64; // A row stride in bytes, = 64 mod 128

  // Lane's rows (one per n-tile) and validity; its 16-byte column within a step is 16t.
  const int8_t *wrow[kNT];
  bool nok[kNT];
#pragma unroll
  for (int j = 0; j < kNT; j++) {
    const int n = col0 + 8 * j + g;
    nok[j] = n < p.N; // N % 8 == 0: an n-tile is wholly valid or not
    wrow[j] = p.W + (int64_t)(nok[j] ? n : 0) * p.K + 16 * t;
  }
  const uint4 zero4 = make_uint4(0, 0, 0, 0);
  auto load_step = [&](int s, uint4(&w)[kNT]) {
    const bool kok = s * 64 + 16 * t < p.K;
#pragma unroll
    for (int j = 0; j < kNT; j++) w[j] = (kok && nok[j]) ? ld_stream(wrow[j] + (int64_t)s * 64) : zero4;
  };

  uint4 ring[kU][kNT];
#pragma unroll
  for (int u = 0; u < kU; u++)
    if (ws0 + u < ws1) load_step(ws0 + u, ring[u]);

  // Stage A[0..M) x [bs0*64, bs1*64) (zero beyond K and for rows M..MR-1).
  {
    const int vec_per_row = nbs * 4, total = MR * vec_per_row;
    for (int i0 = tid; i0 < total; i0 += 4 * kThreads) { // 4 loads in flight per thread
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * kThreads, r = i / vec_per_row, c = i - r * vec_per_row;
        const int k = bs0 * 64 + c * 16;
        v[u] = zero4;
        if (i < total && r < p.M && k < p.K) v[u] = *reinterpret_cast<const uint4 *>(p.A + (int64_t)r * p.K + k);
      }
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * kThreads, r = i / vec_per_row, c = i - r * vec_per_row;
        if (i < total) *reinterpret_cast<uint4 *>(smem + (size_t)r * rs + c * 16) = v[u];
      }
    }
  }
  __syncthreads();

  int acc[kNT][4];
#pragma unroll
  for (int j = 0; j < kNT; j++)
#pragma unroll
    for (int v = 0; v < 4; v++) acc[j][v] = 0;

  for (int c0 = ws0; c0 < ws1; c0 += kU) {
#pragma unroll
    for (int u = 0; u < kU; u++) {
      const int s = c0 + u;
      if (s < ws1) {
        const int kl = (s - bs0) * 64 + 16 * t;
        const uint4 alo = *reinterpret_cast<const uint4 *>(smem + (size_t)g * rs + kl);
        uint4 ahi = zero4;
        if (MR == 16) ahi = *reinterpret_cast<const uint4 *>(smem + (size_t)(g + 8) * rs + kl);
        uint4 w[kNT];
#pragma unroll
        for (int j = 0; j < kNT; j++) w[j] = ring[u][j];
        if (s + kU < ws1) load_step(s + kU, ring[u]);
#pragma unroll
        for (int j = 0; j < kNT; j++) {
          mma_s8(acc[j], alo.x, ahi.x, alo.y, ahi.y, w[j].x, w[j].y);
          mma_s8(acc[j], alo.z, ahi.z, alo.w, ahi.w, w[j].z, w[j].w);
        }
      }
    }
  }

  // Quarter sums -> shared memory (reusing the A area), then added in quarter order.
  __syncthreads();
  int *red = reinterpret_cast<int *>(smem); // [warp][MR][32]
#pragma unroll
  for (int j = 0; j < kNT; j++) {
    const int col = j * 8 + 2 * t;
    *reinterpret_cast<int2 *>(red + (warp * MR + g) * kStripCols + col) = make_int2(acc[j][0], acc[j][1]);
    if (MR == 16) *reinterpret_cast<int2 *>(red + (warp * MR + g + 8) * kStripCols + col) = make_int2(acc[j][2], acc[j][3]);
  }
  __syncthreads();
  const int M = p.M, pcols = kStrips * kStripCols / 2; // column pairs per block
  const int col_base = blockIdx.x * kStrips * kStripCols;
  const int ncols = min(kStrips * kStripCols, p.N - col_base);
  for (int i = tid; i < M * pcols; i += kThreads) {
    const int r = i / pcols, cc = (i - r * pcols) * 2;
    if (cc >= ncols) continue;
    const int s = cc / kStripCols, c = cc % kStripCols;
    int v0 = 0, v1 = 0;
#pragma unroll
    for (int q = 0; q < kKSub; q++) {
      const int2 x = *reinterpret_cast<const int2 *>(red + ((q * kStrips + s) * MR + r) * kStripCols + c);
      v0 += x.x;
      v1 += x.y;
    }
    if (gridDim.y == 1)
      w8a8_store_pair(p, r, col_base + cc, v0, v1);
    else
      *reinterpret_cast<int2 *>(p.partials + ((int64_t)blockIdx.y * M + r) * p.N + col_base + cc) = make_int2(v0, v1);
  }
  if (gridDim.y == 1) return;

  if (!splitk_last_block(p.counters + blockIdx.x, (int)gridDim.y)) return;
  // Each thread owns up to kSlots column pairs; the split loop is outermost so the loads of
  // all slots (and, unrolled, of several splits) are in flight together.
  constexpr int kSlots = (kMaxM * kStrips * kStripCols / 2 + kThreads - 1) / kThreads;
  int s0[kSlots], s1[kSlots];
#pragma unroll
  for (int j = 0; j < kSlots; j++) s0[j] = s1[j] = 0;
  for (int z = 0; z < (int)gridDim.y; z++) {
#pragma unroll
    for (int j = 0; j < kSlots; j++) {
      const int i = tid + j * kThreads, r = i / pcols, cc = (i - r * pcols) * 2;
      if (r < M && cc < ncols) {
        const int2 v = __ldcg(reinterpret_cast<const int2 *>(p.partials + ((int64_t)z * M + r) * p.N + col_base + cc));
        s0[j] += v.x;
        s1[j] += v.y;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kSlots; j++) {
    const int i = tid + j * kThreads, r = i / pcols, cc = (i - r * pcols) * 2;
    if (r < M && cc < ncols) w8a8_store_pair(p, r, col_base + cc, s0[j], s1[j]);
  }
}

struct Plan {
  int mr, blocks_x, splits, steps_per_split, smem;
  size_t ws_bytes;
};


// Splits as in gemm_w4a16_v2.cu: the fewest S in [Smin, Smax] whose blocks fill the resident
// slots (2 per SM) to >= 90% in their last wave, else the best fill. Smin keeps the A slice
// <= 4096 K; Smax keeps >= 16 steps (4 per warp) per block and the int32 partials (S*M*N*4
// bytes) at most a quarter of the weights (N*K bytes): S <= K / (16 M).
Plan make_plan(int dev, int64_t M, int64_t N, int64_t K) {
  Plan pl{};
  pl.mr = M <= 8 ? 8 : 16;
  const int ksteps = (int)((K + 63) / 64);
  pl.blocks_x = (int)((N + kStrips * kStripCols - 1) / (kStrips * kStripCols));
  const int slots = gemm_sm_count(dev) * kBlocksPerSM;
  const int smin = (ksteps + kMaxBlockSteps - 1) / kMaxBlockSteps;
  int smax = (int)std::min<int64_t>(std::max(1, ksteps / 16), std::max<int64_t>(1, K / (16 * M)));
  smax = std::min(std::max(smax, smin), 64);
  if (pl.blocks_x > kMaxSplitTiles) smax = smin;
  int best = smin;
  double best_eff = -1;
  for (int s = smin; s <= smax; s++) {
    const int sps = (ksteps + s - 1) / s, sa = (ksteps + sps - 1) / sps;
    const int64_t blocks = (int64_t)pl.blocks_x * sa;
    const int64_t waves = (blocks + slots - 1) / slots;
    const double eff = (double)blocks / (double)(waves * slots);
    if (eff >= 0.9) {
      best = s;
      break;
    }
    if (eff > best_eff + 1e-9) best_eff = eff, best = s;
  }
  pl.steps_per_split = (ksteps + best - 1) / best;
  pl.splits = (ksteps + pl.steps_per_split - 1) / pl.steps_per_split;
  const int rs = ((pl.steps_per_split * 64 + 127) / 128) * 128 + 64;
  const int a_bytes = pl.mr * rs;
  const int red_bytes = kWarps * pl.mr * kStripCols * 4;
  pl.smem = std::max(a_bytes, red_bytes);
  pl.ws_bytes = pl.splits > 1 ? kCounterBytes + (size_t)pl.splits * M * N * sizeof(int32_t) : 0;
  return pl;
}

template <int MR>
int launch(int dev, const Plan &pl, const V2Args &a, cudaStream_t st, const char *op) {
  auto kern = gemm_w8a8_v2_kernel<MR>;
  static int configured[64];
  const int need = std::max(pl.smem, 48 * 1024);
  if (dev < 0 || dev >= 64 || configured[dev] < need) {
    AUTOQ_CUDA(op, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, need));
    if (dev >= 0 && dev < 64) configured[dev] = need;
  }
  kern<<<dim3(pl.blocks_x, pl.splits), kThreads, pl.smem, st>>>(a);
  return autoq_check_launch(op, "gemm_w8a8_v2_kernel");
}

int run(int dev, const char *op, V2Args a, int64_t M, int64_t N, int64_t K, void *ws, size_t ws_bytes, void *stream) {
  if (M < 1 || M > kMaxM || N < 8 || K < 16 || N % 8 != 0 || K % 16 != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: shape M=%lld N=%lld K=%lld: need 1 <= M <= 16, N a positive multiple of 8, K a "
                           "positive multiple of 16",
                           op, (long long)M, (long long)N, (long long)K);
  if (N > (1LL << 30) || K > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape N=%lld K=%lld too large", op, (long long)N, (long long)K);
  if (a.A == nullptr || a.W == nullptr || ((uintptr_t)a.A & 15) || ((uintptr_t)a.W & 15))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: A and W must be non-NULL 16-byte aligned device pointers", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  const Plan pl = make_plan(dev, M, N, K);
  a.M = (int)M, a.N = (int)N, a.K = (int)K;
  a.steps_per_split = pl.steps_per_split;
  if (pl.splits > 1) {
    if (ws == nullptr || ws_bytes < pl.ws_bytes)
      return autoq_set_error(AUTOQ_ERR_INVALID,
                             "%s: M=%lld N=%lld K=%lld splits K %d ways and needs a zeroed workspace of %zu bytes "
                             "(got %zu); size it with autoq_gemm_w8a8_v2_workspace_bytes",
                             op, (long long)M, (long long)N, (long long)K, pl.splits, pl.ws_bytes, ws_bytes);
    a.counters = (int *)ws;
    a.partials = (int32_t *)((char *)ws + kCounterBytes);
  }
  cudaStream_t st = (cudaStream_t)stream;
  return pl.mr == 8 ? launch<8>(dev, pl, a, st, op) : launch<16>(dev, pl, a, st, op);
}

} // namespace

extern "C" size_t autoq_gemm_w8a8_v2_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K) {
  if (M > kMaxM) return autoq_gemm_w8a8_cfg_workspace_bytes(dev, large_cfg(M), M, N, K);
  if (M < 1 || N < 1 || K < 1) return 0;
  return make_plan(dev, M, N, K).ws_bytes;
}

extern "C" int autoq_gemm_w8a8_v2(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                                  const float *w_scales, const float *bias, void *out_f16, int64_t M, int64_t N,
                                  int64_t K, void *workspace, size_t workspace_bytes, void *stream) {
  if (M > kMaxM) // large M: the tiled kernel of gemm_w8a8.cu, 128 x 256 tiles
    return autoq_gemm_w8a8_cfg(dev, large_cfg(M), A, a_scales, W, w_scales, bias, out_f16, nullptr, M, N, K,
                               workspace, workspace_bytes, stream, 1);
  const char *op = "autoq_gemm_w8a8_v2";
  if (a_scales == nullptr || w_scales == nullptr || out_f16 == nullptr || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: a_scales, w_scales and a 4-byte aligned out must be non-NULL", op);
  V2Args a{};
  a.A = A, a.W = W, a.a_scales = a_scales, a.w_scales = w_scales, a.bias = bias;
  a.out = (__half *)out_f16;
  return run(dev, op, a, M, N, K, workspace, workspace_bytes, stream);
}

extern "C" int autoq_gemm_w8a8_v2_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32, int64_t M,
                                      int64_t N, int64_t K, void *workspace, size_t workspace_bytes, void *stream) {
  if (M > kMaxM)
    return autoq_gemm_w8a8_cfg(dev, large_cfg(M), A, nullptr, W, nullptr, nullptr, nullptr, out_i32, M, N, K,
                               workspace, workspace_bytes, stream, 1);
  const char *op = "autoq_gemm_w8a8_v2_i32";
  if (out_i32 == nullptr || ((uintptr_t)out_i32 & 7))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: out_i32 must be a non-NULL 8-byte aligned device pointer", op);
  V2Args a{};
  a.A = A, a.W = W, a.out_i32 = out_i32;
  return run(dev, op, a, M, N, K, workspace, workspace_bytes, stream);
}
