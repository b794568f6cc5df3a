// gemm_w8a8.cu: int8 x int8 -> int32 GEMM on tensor cores with a fused dequantizing epilogue.
//
//   out[m, n] = f16( float(acc[m, n]) * a_scales[m] * w_scales[n] (+ bias[n]) )
//   acc[m, n] = sum_k A[m, k] * W[n, k]   (exact int32)
//
// Data layout: A [M, K] int8 row-major (per-token quantized activations), W [N, K] int8
// row-major (one row per output channel, as quant.QTensor stores it; no re-layout needed:
// W row-major is exactly the "col" B operand of mma.row.col), out [M, N] F16 row-major.
//
// Tiling: a block computes a BM x BN tile of out (BM = WM*MT*16, BN = WN*NT*8) from WM x WN
// warps; a warp owns an (MT*16) x (NT*8) sub-tile and keeps MT*NT*4 int32 accumulators in
// registers. K advances in BK = 128-byte (128 int8) steps through a STAGES-deep cp.async
// ring in shared memory (A tile BM x 128 bytes, W tile BN x 128 bytes per stage).
//
// Shared memory rows are 128 bytes = 8 chunks of 16 bytes; chunk c of row r is stored at
// chunk position c ^ (r & 7) (XOR swizzle), so the 8 rows an ldmatrix phase reads hit 8
// different bank groups (no conflicts) and cp.async writes stay 16-byte granular.
//
// Thread mapping of one mma.sync.m16n8k32.row.col.s32.s8.s8.s32 (lane = 4*g + t):
//   A frag a0..a3: (row g, k 4t..4t+3), (row g+8, k 4t..), (row g, k 16+4t..), (row g+8, k 16+4t..)
//   B frag b0, b1: (n g, k 4t..4t+3), (n g, k 16+4t..)
//   C c0..c3     : (row g, n 2t), (row g, n 2t+1), (row g+8, n 2t), (row g+8, n 2t+1)
// ldmatrix.x4 over 8x16-byte matrices delivers exactly these: for A, lanes 0-15 point at
// rows 0-15 of k-chunk 0 and lanes 16-31 at rows 0-15 of k-chunk 1 (matrices = a0..a3);
// for W, lane l points at n-row (l/16)*8 + l%8, k-chunk (l/8)%2, giving b0,b1 of n-tile 0
// then b0,b1 of n-tile 1.
//
// Split-K: when the M x N tiles alone cannot fill the GPU, gridDim.z = S blocks share a tile,
// each over a contiguous range of K steps; each writes its int32 partials to the workspace.
// The caller picks who adds them (the `reduce` argument, chosen by the Go dispatch table in
// cgo/dispatch.go):
//   AUTOQ_SPLITK_LAST_BLOCK: the last block of a tile to arrive (an atomic counter per tile)
//     sums the S partials in split order and runs the epilogue; the counter is reset by
//     that block, so the workspace stays ready.
//   AUTOQ_SPLITK_REDUCE_KERNEL: the blocks only write partials; splitk_reduce_kernel, a
//     grid-wide kernel launched right after, sums them per output pair (the last-block
//     reduction reads rows x 128 x S partials through one block, serialised on L2 latency
//     at M = 128; H100 run 2 measured 0.75-1.08x of cuBLAS with this against 0.48-1.08x).
// Integer sums are exact, so every S and both reductions give the same bits as S = 1.
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_splitk.cuh"

namespace {


constexpr int kBK = 128; // int8 elements (bytes) of K per pipeline stage






struct W8A8Args {
  const int8_t *A;
  const int8_t *W;
  const float *a_scales, *w_scales, *bias;
  __half *out;      // F16 output (mode 0)
  int32_t *out_i32; // int32 output (mode 1)
  int M, N, K;
  int ktiles;         // ceil(K / kBK)
  int tiles_per_split;
  int *counters;      // [gridDim.x * gridDim.y], zero between calls
  int32_t *partials;  // [S, M, N]
  int defer_reduce;   // split-K: only write partials; splitk_reduce_kernel adds them
};

// Issues the cp.async copies of one K step of a row-major [rows, K] int8 operand: its rows
// r0 .. r0+ROWS-1, bytes k0 .. k0+kBK-1, into the swizzled stage tile at dst (rows >= rows and
// k >= K zero-filled).
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(uint32_t dst, const int8_t *src, int r0, int rows, int K, int k0, int tid) {
#pragma unroll
  for (int i = tid; i < ROWS * 8; i += THREADS) {
    const int r = i >> 3, c = i & 7, m = r0 + r, k = k0 + c * 16;
    const bool ok = m < rows && k < K;
    const int8_t *from = ok ? src + (int64_t)m * K + k : src;
    cp_async16(dst + swz(r, c), from, ok ? 16 : 0);
  }
}

// Rows and columns outside out are dropped; the rest is the shared W8A8 epilogue.
__device__ __forceinline__ void store_pair(const W8A8Args &p, int row, int col, int v0, int v1) {
  if (row >= p.M || col >= p.N) return;
  w8a8_store_pair(p, row, col, v0, v1);
}

template <int MT, int NT, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(WM *WN * 32) gemm_w8a8_kernel(W8A8Args p) {
  constexpr int BM = WM * MT * 16, BN = WN * NT * 8, THREADS = WM * WN * 32;
  constexpr int A_BYTES = BM * kBK, STAGE_BYTES = (BM + BN) * kBK;
  static_assert(NT % 2 == 0, "NT must be even (ldmatrix.x4 loads two n-tiles)");
  extern __shared__ __align__(128) uint8_t smem[];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int kt_begin = blockIdx.z * p.tiles_per_split;
  const int kt_end = min(p.ktiles, kt_begin + p.tiles_per_split);
  const int nk = kt_end - kt_begin;
  const uint32_t smem_base = smem_u32(smem);

  // Issues the cp.async copies of K step kt into ring slot `slot`.
  auto load_stage = [&](int slot, int kt) {
    const uint32_t sa = smem_base + slot * STAGE_BYTES, sb = sa + A_BYTES;
    const int k0 = kt * kBK;
    load_tile<BM, THREADS>(sa, p.A, m0, p.M, p.K, k0, tid);
    load_tile<BN, THREADS>(sb, p.W, n0, p.N, p.K, k0, tid);
  };

  int acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int v = 0; v < 4; v++) acc[i][j][v] = 0;

  ring_prologue<STAGES>(nk, kt_begin, load_stage);

  for (int it = 0; it < nk; it++) {
    ring_advance<STAGES>(it, nk, kt_begin, load_stage);
    const uint32_t sa = smem_base + (it % STAGES) * STAGE_BYTES, sb = sa + A_BYTES;
#pragma unroll
    for (int kk = 0; kk < kBK / 32; kk++) {
      uint32_t af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; i++) {
        const int r = wm * MT * 16 + i * 16 + (lane & 15);
        ldmatrix_x4(sa + swz(r, kk * 2 + (lane >> 4)), af[i][0], af[i][1], af[i][2], af[i][3]);
      }
      uint32_t bf[NT][2];
#pragma unroll
      for (int j = 0; j < NT / 2; j++) {
        const int r = wn * NT * 8 + j * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldmatrix_x4(sb + swz(r, kk * 2 + ((lane >> 3) & 1)), bf[2 * j][0], bf[2 * j][1], bf[2 * j + 1][0],
                    bf[2 * j + 1][1]);
      }
#pragma unroll
      for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++) mma_s8(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
  }
  cp_async_wait<0>();

  const int g = lane >> 2, t = lane & 3;
  if (gridDim.z == 1) {
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
      for (int j = 0; j < NT; j++) {
        const int row = m0 + wm * MT * 16 + i * 16 + g, col = n0 + wn * NT * 8 + j * 8 + 2 * t;
        store_pair(p, row, col, acc[i][j][0], acc[i][j][1]);
        store_pair(p, row + 8, col, acc[i][j][2], acc[i][j][3]);
      }
    return;
  }

  // Split-K: publish partials, then the last block of this tile reduces them in order.
  int32_t *part = p.partials + (int64_t)blockIdx.z * p.M * p.N;
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++) {
      const int row = m0 + wm * MT * 16 + i * 16 + g, col = n0 + wn * NT * 8 + j * 8 + 2 * t;
      if (col < p.N) {
        if (row < p.M) *reinterpret_cast<int2 *>(part + (int64_t)row * p.N + col) = make_int2(acc[i][j][0], acc[i][j][1]);
        if (row + 8 < p.M)
          *reinterpret_cast<int2 *>(part + (int64_t)(row + 8) * p.N + col) = make_int2(acc[i][j][2], acc[i][j][3]);
      }
    }
  if (p.defer_reduce) return;
  const int tile = blockIdx.y * gridDim.x + blockIdx.x;
  if (!splitk_last_block(p.counters + tile, (int)gridDim.z)) return;
  for (int i = tid; i < BM * BN / 2; i += THREADS) {
    const int r = i / (BN / 2), c = (i % (BN / 2)) * 2, row = m0 + r, col = n0 + c;
    if (row >= p.M || col >= p.N) continue;
    int s0 = 0, s1 = 0;
    for (int z = 0; z < (int)gridDim.z; z++) {
      const int2 v = __ldcg(reinterpret_cast<const int2 *>(p.partials + ((int64_t)z * p.M + row) * p.N + col));
      s0 += v.x;
      s1 += v.y;
    }
    store_pair(p, row, col, s0, s1);
  }
}

// The epilogue, for splitk_reduce_kernel (int32 partials: exact, any order gives the same).
struct W8A8Store {
  __device__ void operator()(const W8A8Args &p, int row, int col, int v0, int v1) const {
    store_pair(p, row, col, v0, v1);
  }
};

// The tile and warp layout (cfg), the grid and the split of K (int32 partials no larger than
// the weights: S <= K / (4M); at most 16 splits).
struct Plan : SplitK {
  int cfg; // 0: BM 16, 1: BM 64, 2: BM 128
  int bm, bn, threads, stages, smem;
  int gx, gy, ktiles;
};

// Tiles by M: 16 x 128 (4 warps), 64 x 128 and 128 x 128 (8 warps).
Plan make_plan(int dev, int64_t M, int64_t N, int64_t K) {
  Plan pl{};
  if (M <= 16) {
    pl.cfg = 0, pl.bm = 16, pl.bn = 128, pl.threads = 128, pl.stages = 4;
  } else if (M <= 64) {
    pl.cfg = 1, pl.bm = 64, pl.bn = 128, pl.threads = 256, pl.stages = 4;
  } else {
    pl.cfg = 2, pl.bm = 128, pl.bn = 128, pl.threads = 256, pl.stages = 3;
  }
  pl.smem = (pl.bm + pl.bn) * kBK * pl.stages;
  pl.gx = (int)((N + pl.bn - 1) / pl.bn);
  pl.gy = (int)((M + pl.bm - 1) / pl.bm);
  pl.ktiles = (int)((K + kBK - 1) / kBK);
  static_cast<SplitK &>(pl) =
      splitk_plan(dev, (int64_t)pl.gx * pl.gy, pl.ktiles, K / (4 * M), 16, (size_t)M * N * sizeof(int32_t));
  return pl;
}

template <int MT, int NT, int WM, int WN, int STAGES>
int launch(int dev, const Plan &pl, const W8A8Args &a, cudaStream_t st, const char *op) {
  static bool configured[64];
  return splitk_launch(dev, configured, gemm_w8a8_kernel<MT, NT, WM, WN, STAGES>,
                       splitk_reduce_kernel<W8A8Args, int32_t, W8A8Store>, a, dim3(pl.gx, pl.gy, pl.splits),
                       pl.threads, pl.smem, st, "gemm_w8a8_kernel", op);
}

int run(int dev, const char *op, W8A8Args a, int64_t M, int64_t N, int64_t K, int reduce, void *ws,
        size_t ws_bytes, void *stream) {
  AUTOQ_TRY(splitk_check_reduce(op, reduce));
  a.defer_reduce = reduce == AUTOQ_SPLITK_REDUCE_KERNEL ? 1 : 0;
  if (M < 1 || N < 8 || K < 16 || N % 8 != 0 || K % 16 != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: shape M=%lld N=%lld K=%lld: need M >= 1, N a positive multiple of 8, K a positive "
                           "multiple of 16",
                           op, (long long)M, (long long)N, (long long)K);
  if (M > (1LL << 30) || N > (1LL << 30) || K > (1LL << 30) || M * N > (1LL << 31) * 8)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld too large", op, (long long)M,
                           (long long)N, (long long)K);
  if (a.A == nullptr || a.W == nullptr || ((uintptr_t)a.A & 15) || ((uintptr_t)a.W & 15))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: A and W must be non-NULL 16-byte aligned device pointers", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  const Plan pl = make_plan(dev, M, N, K);
  AUTOQ_TRY(splitk_check_rows(op, M, pl.gy));
  a.M = (int)M, a.N = (int)N, a.K = (int)K;
  a.ktiles = pl.ktiles;
  a.tiles_per_split = pl.per_split;
  AUTOQ_TRY(splitk_use_workspace(pl, a, ws, ws_bytes, M, N, K, "autoq_gemm_w8a8_workspace_bytes", op));
  cudaStream_t st = (cudaStream_t)stream;
  switch (pl.cfg) {
  case 0:
    return launch<1, 4, 1, 4, 4>(dev, pl, a, st, op);
  case 1:
    return launch<2, 4, 2, 4, 4>(dev, pl, a, st, op);
  default:
    return launch<4, 4, 2, 4, 3>(dev, pl, a, st, op);
  }
}

} // namespace

extern "C" size_t autoq_gemm_w8a8_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K) {
  if (M < 1 || N < 1 || K < 1) return 0;
  return make_plan(dev, M, N, K).workspace_bytes();
}

extern "C" int autoq_gemm_w8a8(int dev, const int8_t *A, const float *a_scales, const int8_t *W,
                               const float *w_scales, const float *bias, void *out_f16, int64_t M, int64_t N,
                               int64_t K, int reduce, void *workspace, size_t workspace_bytes, void *stream) {
  const char *op = "autoq_gemm_w8a8";
  if (a_scales == nullptr || w_scales == nullptr || out_f16 == nullptr || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: a_scales, w_scales and a 4-byte aligned out must be non-NULL", op);
  W8A8Args a{};
  a.A = A, a.W = W, a.a_scales = a_scales, a.w_scales = w_scales, a.bias = bias;
  a.out = (__half *)out_f16;
  return run(dev, op, a, M, N, K, reduce, workspace, workspace_bytes, stream);
}

extern "C" int autoq_gemm_w8a8_i32(int dev, const int8_t *A, const int8_t *W, int32_t *out_i32, int64_t M,
                                   int64_t N, int64_t K, int reduce, void *workspace, size_t workspace_bytes,
                                   void *stream) {
  const char *op = "autoq_gemm_w8a8_i32";
  if (out_i32 == nullptr || ((uintptr_t)out_i32 & 7))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: out_i32 must be a non-NULL 8-byte aligned device pointer", op);
  W8A8Args a{};
  a.A = A, a.W = W, a.out_i32 = out_i32;
  return run(dev, op, a, M, N, K, reduce, workspace, workspace_bytes, stream);
}
