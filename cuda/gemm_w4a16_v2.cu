// gemm_w4a16_v2.cu: W4A16 for small M (1..16), a memory-streaming variant of gemm_w4a16.cu.
//
// Same function, same packed weights (the 64n x 16k MMA-fragment tiles documented at the top
// of gemm_w4a16.cu, produced by cgo.PackW4A16), same dequantization (lop3 + the 0x6400 F16
// exponent trick, one F16x2 multiply by the group scale) and the same mma.m16n8k16 with F32
// accumulators, so the results differ from v1 only by the F32 summation order.
//
// Why a second kernel: at M <= 16 the GEMM is a stream over N*K/2 weight bytes. v1 moves the
// weights through a 4-deep cp.async ring in shared memory with a block barrier per 64-wide K
// stage; v2 keeps them in registers instead:
//   - each lane loads its own 16 bytes of a tile straight into registers with
//     ld.global.nc.L1::no_allocate.v4 (the fragment layout makes every lane's vector its
//     own), kU = 8 tiles (4 KB; asymmetric 4, for registers) per warp in flight: a register
//     ring where tile u's vector is reloaded with tile u + kU right after it is
//     dequantized; 16 warps per SM, so up to 64 KB in flight per SM (Little's law at
//     ~3 TB/s and ~1 us asks ~25 KB);
//   - no barrier inside the K loop;
//   - the activations of the block's K range (M <= 16 rows) are staged once in shared
//     memory (rows padded by 16 bytes: the A-fragment reads are conflict-free), after the
//     first weight chunk has been issued, and read as 32-bit A fragments (M <= 8: only the
//     rows 0..7 half of the fragment, the other half is zero).
//
// ---- Thread mapping ----
// A block has 8 warps and covers 2 n-strips (128 columns) and one K range (split
// blockIdx.y): warp w streams strip 2*blockIdx.x + (w & 1) over quarter (w >> 1) of the
// block's K range. The four quarter sums are added in shared memory in quarter order 0..3;
// with gridDim.y = S > 1 splits, each block writes F32 partials to the workspace and the
// last block of a column pair to arrive (per-pair atomic counter) adds the S partials in
// split order 0..S-1 (a fixed order: reproducible bits, no float atomics), adds the bias and
// writes F16. The workspace format (16 KiB of counters, then partials) is v1's, so one
// workspace serves both kernels.
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"

// gemm_w4a16.cu's kernel with the split-K reduction in a separate grid-wide kernel (M > 16).
extern "C" int autoq_gemm_w4a16_ex(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                   const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                   int64_t K, int64_t group, void *workspace, size_t workspace_bytes, void *stream,
                                   int defer_reduce);

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kKSub = 4, kStrips = 2;
constexpr int kMaxBlockTiles = 128;  // at most 2048 K per block: A slice <= 66 KB of smem
constexpr int kBlocksPerSM = 2;      // __launch_bounds__(256, 2)
constexpr int kMaxM = 16;


struct V2Args {
  const __half *A;
  const uint4 *W;
  const __half *scales, *zeros;
  const float *bias;
  __half *out;
  int M, N, K, group;
  int tiles_per_split; // k16 tiles per block
  int *counters;
  float *partials; // [S, M, N]
};


template <int MR, bool ASYM>
__global__ void __launch_bounds__(kThreads, kBlocksPerSM) gemm_w4a16_v2_kernel(V2Args p) {
  constexpr int kU = ASYM ? 4 : 8; // tiles in flight per warp (asymmetric: fewer, no spills)
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int strips = p.N / 64, ktiles = p.K / 16, tpg = p.group / 16;
  const int nt = blockIdx.x * kStrips + (warp & 1);
  const bool active = nt < strips;
  const int bt0 = blockIdx.y * p.tiles_per_split;
  const int bt1 = min(ktiles, bt0 + p.tiles_per_split);
  const int nbt = bt1 - bt0;
  const int per = (nbt + kKSub - 1) / kKSub;
  const int wt0 = min(bt1, bt0 + (warp >> 1) * per);
  const int wt1 = active ? min(bt1, wt0 + per) : wt0;
  const int rs = nbt * 16 + 8; // A row stride in halves (16-byte pad: conflict-free fragments)

  const uint4 *wp = p.W + (int64_t)nt * ktiles * 32 + lane;
  const int64_t sstride = (int64_t)(p.N / 64) * 64; // halves per scale row
  const __half *sp = p.scales + (int64_t)nt * 64 + g * 8;
  const __half *zp = ASYM ? p.zeros + (int64_t)nt * 64 + g * 8 : nullptr;

  // Registers: kU weight vectors (a ring: the vector of tile u is reloaded with tile u of
  // the next chunk as soon as it has been dequantized, so about kU loads stay in flight per
  // warp) and the scales/zeros of the first two groups of the current chunk (c*) and of the
  // next one (n*).
  uint4 cw[kU], cs0, cs1, ns0, ns1, cz0, cz1, nz0, nz1;
  const uint4 zero4 = make_uint4(0, 0, 0, 0);
  cz0 = cz1 = nz0 = nz1 = zero4;
  auto load_groups = [&](int c0, uint4 &s0, uint4 &s1, uint4 &z0, uint4 &z1) {
    const int gi0 = c0 / tpg, gi1 = min(gi0 + 1, (ktiles - 1) / tpg);
    s0 = __ldg(reinterpret_cast<const uint4 *>(sp + gi0 * sstride));
    s1 = __ldg(reinterpret_cast<const uint4 *>(sp + gi1 * sstride));
    if (ASYM) {
      z0 = __ldg(reinterpret_cast<const uint4 *>(zp + gi0 * sstride));
      z1 = __ldg(reinterpret_cast<const uint4 *>(zp + gi1 * sstride));
    }
  };
  if (wt0 < wt1) {
#pragma unroll
    for (int u = 0; u < kU; u++)
      if (wt0 + u < wt1) cw[u] = ld_stream(wp + (int64_t)(wt0 + u) * 32);
    load_groups(wt0, cs0, cs1, cz0, cz1);
  }

  // Stage A[0..M) x [bt0*16, bt1*16) (rows M..MR-1 zero) while the first chunk is in flight.
  {
    const int vec_per_row = nbt * 2, total = MR * vec_per_row; // 16-byte vectors
    for (int i0 = tid; i0 < total; i0 += 4 * kThreads) { // 4 loads in flight per thread
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * kThreads, r = i / vec_per_row, c = i - r * vec_per_row;
        v[u] = zero4;
        if (i < total && r < p.M) v[u] = *reinterpret_cast<const uint4 *>(p.A + (int64_t)r * p.K + (int64_t)bt0 * 16 + c * 8);
      }
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * kThreads, r = i / vec_per_row, c = i - r * vec_per_row;
        if (i < total) *reinterpret_cast<uint4 *>(smem + ((size_t)r * rs + c * 8) * 2) = v[u];
      }
    }
  }
  __syncthreads();
  const uint32_t *as = reinterpret_cast<const uint32_t *>(smem);

  float acc[8][4];
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int v = 0; v < 4; v++) acc[j][v] = 0.0f;

  for (int c0 = wt0; c0 < wt1; c0 += kU) {
    if (c0 + kU < wt1) load_groups(c0 + kU, ns0, ns1, nz0, nz1);
    const int g1_start = (c0 / tpg + 1) * tpg; // first tile of the chunk's second group
#pragma unroll
    for (int u = 0; u < kU; u++) {
      const int kt = c0 + u;
      if (kt < wt1) {
        const bool first = kt < g1_start;
        uint4 sc = first ? cs0 : cs1, zr = first ? cz0 : cz1;
        if (kt >= g1_start + tpg) { // group < 128: a chunk can touch more than two groups
          sc = __ldg(reinterpret_cast<const uint4 *>(sp + (kt / tpg) * sstride));
          if (ASYM) zr = __ldg(reinterpret_cast<const uint4 *>(zp + (kt / tpg) * sstride));
        }
        uint32_t b[8][2];
        w4a16_dequant_tile<ASYM>(cw[u], sc, zr, b);
        const int kl = (kt - bt0) * 16; // halves
        const uint32_t a0 = as[(g * rs + kl + 2 * t) >> 1];
        const uint32_t a2 = as[(g * rs + kl + 8 + 2 * t) >> 1];
        uint32_t a1 = 0, a3 = 0;
        if (MR == 16) {
          a1 = as[((g + 8) * rs + kl + 2 * t) >> 1];
          a3 = as[((g + 8) * rs + kl + 8 + 2 * t) >> 1];
        }
        if (kt + kU < wt1) cw[u] = ld_stream(wp + (int64_t)(kt + kU) * 32);
#pragma unroll
        for (int j = 0; j < 8; j++) mma_f16(acc[j], a0, a1, a2, a3, b[j][0], b[j][1]);
      }
    }
    cs0 = ns0, cs1 = ns1, cz0 = nz0, cz1 = nz1;
  }

  // Quarter sums -> shared memory (reusing the A area), then added in quarter order.
  __syncthreads();
  float *red = reinterpret_cast<float *>(smem); // [warp][MR][64]
#pragma unroll
  for (int j = 0; j < 8; j++) {
    const int col = j * 8 + 2 * t;
    *reinterpret_cast<float2 *>(red + (warp * MR + g) * 64 + col) = make_float2(acc[j][0], acc[j][1]);
    if (MR == 16) *reinterpret_cast<float2 *>(red + (warp * MR + g + 8) * 64 + col) = make_float2(acc[j][2], acc[j][3]);
  }
  __syncthreads();
  const int M = p.M, pairs_cols = kStrips * 32; // column pairs per block
  const int col_base = blockIdx.x * kStrips * 64;
  const int ncols = min(kStrips * 64, p.N - col_base);
  for (int i = tid; i < M * pairs_cols; i += kThreads) {
    const int r = i / pairs_cols, cc = (i - r * pairs_cols) * 2; // cc in [0, 128)
    if (cc >= ncols) continue;
    const int s = cc >> 6, c = cc & 63;
    float v0 = 0.0f, v1 = 0.0f;
#pragma unroll
    for (int q = 0; q < kKSub; q++) {
      const float2 x = *reinterpret_cast<const float2 *>(red + ((q * kStrips + s) * MR + r) * 64 + c);
      v0 = __fadd_rn(v0, x.x);
      v1 = __fadd_rn(v1, x.y);
    }
    if (gridDim.y == 1)
      w4a16_store_out(p, r, col_base + cc, v0, v1);
    else
      *reinterpret_cast<float2 *>(p.partials + ((int64_t)blockIdx.y * M + r) * p.N + col_base + cc) = make_float2(v0, v1);
  }
  if (gridDim.y == 1) return;

  if (!splitk_last_block(p.counters + blockIdx.x, (int)gridDim.y)) return;
  // Each thread owns up to kSlots column pairs; the split loop is outermost so the loads of
  // all slots (and, unrolled, of several splits) are in flight together. Per output the
  // partials are still added in split order 0..S-1 from 0.0f.
  constexpr int kSlots = (kMaxM * kStrips * 32 + kThreads - 1) / kThreads;
  float s0[kSlots], s1[kSlots];
#pragma unroll
  for (int j = 0; j < kSlots; j++) s0[j] = s1[j] = 0.0f;
  for (int z = 0; z < (int)gridDim.y; z++) {
#pragma unroll
    for (int j = 0; j < kSlots; j++) {
      const int i = tid + j * kThreads, r = i / pairs_cols, cc = (i - r * pairs_cols) * 2;
      if (r < M && cc < ncols) {
        const float2 v = __ldcg(reinterpret_cast<const float2 *>(p.partials + ((int64_t)z * M + r) * p.N + col_base + cc));
        s0[j] = __fadd_rn(s0[j], v.x);
        s1[j] = __fadd_rn(s1[j], v.y);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kSlots; j++) {
    const int i = tid + j * kThreads, r = i / pairs_cols, cc = (i - r * pairs_cols) * 2;
    if (r < M && cc < ncols) w4a16_store_out(p, r, col_base + cc, s0[j], s1[j]);
  }
}

struct Plan {
  int mr, pairs, splits, tiles_per_split, smem;
  size_t ws_bytes;
};


// Splits: the fewest S in [Smin, Smax] whose blocks fill the resident slots (2 per SM) to
// >= 90% in their last wave, else the best fill. Smin keeps the block's A slice <= 2048 K;
// Smax keeps >= 16 tiles (4 per warp) per block and the F32 partials (S*M*N*4 bytes) at most
// a quarter of the packed weights (N*K/2 bytes): S <= K / (32 M).
Plan make_plan(int dev, int64_t M, int64_t N, int64_t K) {
  Plan pl{};
  pl.mr = M <= 8 ? 8 : 16;
  const int strips = (int)(N / 64), ktiles = (int)(K / 16);
  pl.pairs = (strips + kStrips - 1) / kStrips;
  const int slots = gemm_sm_count(dev) * kBlocksPerSM;
  const int smin = (ktiles + kMaxBlockTiles - 1) / kMaxBlockTiles;
  int smax = (int)std::min<int64_t>(std::max(1, ktiles / 16), std::max<int64_t>(1, K / (32 * M)));
  smax = std::min(std::max(smax, smin), 64);
  if (pl.pairs > kMaxSplitTiles) smax = smin; // (not reached for N < 2^19)
  int best = smin;
  double best_eff = -1;
  for (int s = smin; s <= smax; s++) {
    const int tps = (ktiles + s - 1) / s, sa = (ktiles + tps - 1) / tps;
    const int64_t blocks = (int64_t)pl.pairs * sa;
    const int64_t waves = (blocks + slots - 1) / slots;
    const double eff = (double)blocks / (double)(waves * slots);
    if (eff >= 0.9) {
      best = s;
      break;
    }
    if (eff > best_eff + 1e-9) best_eff = eff, best = s;
  }
  pl.tiles_per_split = (ktiles + best - 1) / best;
  pl.splits = (ktiles + pl.tiles_per_split - 1) / pl.tiles_per_split;
  const int a_bytes = pl.mr * (pl.tiles_per_split * 16 + 8) * 2;
  const int red_bytes = kWarps * pl.mr * 64 * 4;
  pl.smem = std::max(a_bytes, red_bytes);
  pl.ws_bytes = pl.splits > 1 ? kCounterBytes + (size_t)pl.splits * M * N * sizeof(float) : 0;
  return pl;
}

template <int MR, bool ASYM>
int launch(int dev, const Plan &pl, const V2Args &a, cudaStream_t st, const char *op) {
  auto kern = gemm_w4a16_v2_kernel<MR, ASYM>;
  static int configured[64]; // largest dynamic smem size set so far, per device
  const int need = std::max(pl.smem, 48 * 1024);
  if (dev < 0 || dev >= 64 || configured[dev] < need) {
    AUTOQ_CUDA(op, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, need));
    if (dev >= 0 && dev < 64) configured[dev] = need;
  }
  kern<<<dim3(pl.pairs, pl.splits), kThreads, pl.smem, st>>>(a);
  return autoq_check_launch(op, "gemm_w4a16_v2_kernel");
}

} // namespace

extern "C" size_t autoq_gemm_w4a16_v2_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K) {
  if (M > kMaxM) return autoq_gemm_w4a16_workspace_bytes(dev, M, N, K);
  if (M < 1 || N < 64 || K < 64) return 0;
  return make_plan(dev, M, N, K).ws_bytes;
}

extern "C" int autoq_gemm_w4a16_v2(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                   const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                   int64_t K, int64_t group, void *workspace, size_t workspace_bytes, void *stream) {
  const char *op = "autoq_gemm_w4a16_v2";
  if (M > kMaxM) // large M: the tiled kernel of gemm_w4a16.cu, split-K reduced by a separate kernel
    return autoq_gemm_w4a16_ex(dev, A_f16, W_packed, scales_f16, zeros_f16, bias, out_f16, M, N, K, group, workspace,
                               workspace_bytes, stream, 1);
  AUTOQ_TRY(w4a16_check_shape(op, M, N, K, group));
  if (N > (1LL << 30) || K > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape N=%lld K=%lld too large", op, (long long)N, (long long)K);
  AUTOQ_TRY(w4a16_check_pointers(op, A_f16, W_packed, scales_f16, zeros_f16, out_f16));
  AUTOQ_TRY(autoq_use_device(dev, op));
  const Plan pl = make_plan(dev, M, N, K);
  if (pl.pairs > 2147483647 / 2)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: N=%lld too large", op, (long long)N);
  V2Args a{};
  a.A = (const __half *)A_f16, a.W = (const uint4 *)W_packed;
  a.scales = (const __half *)scales_f16, a.zeros = (const __half *)zeros_f16;
  a.bias = bias, a.out = (__half *)out_f16;
  a.M = (int)M, a.N = (int)N, a.K = (int)K, a.group = (int)group;
  a.tiles_per_split = pl.tiles_per_split;
  if (pl.splits > 1) {
    if (pl.pairs > kMaxSplitTiles)
      return autoq_set_error(AUTOQ_ERR_INVALID, "%s: N=%lld has %d column pairs, over the %d split-K counters", op,
                             (long long)N, pl.pairs, kMaxSplitTiles);
    if (workspace == nullptr || workspace_bytes < pl.ws_bytes)
      return autoq_set_error(AUTOQ_ERR_INVALID,
                             "%s: M=%lld N=%lld K=%lld splits K %d ways and needs a zeroed workspace of %zu bytes "
                             "(got %zu); size it with autoq_gemm_w4a16_v2_workspace_bytes",
                             op, (long long)M, (long long)N, (long long)K, pl.splits, pl.ws_bytes, workspace_bytes);
    a.counters = (int *)workspace;
    a.partials = (float *)((char *)workspace + kCounterBytes);
  }
  cudaStream_t st = (cudaStream_t)stream;
  const bool asym = zeros_f16 != nullptr;
  if (pl.mr == 8) return asym ? launch<8, true>(dev, pl, a, st, op) : launch<8, false>(dev, pl, a, st, op);
  return asym ? launch<16, true>(dev, pl, a, st, op) : launch<16, false>(dev, pl, a, st, op);
}
