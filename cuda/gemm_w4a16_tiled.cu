// gemm_w4a16_tiled.cu: F16 activations x packed int4 weights (group scales) -> F16, tensor
// cores: the tiled split-K kernel (64-column MMA-fragment tiles through a cp.async ring).
// gemm_w4a16_strip.cu is the other W4A16 kernel (small M, its own weight layout); the Go
// dispatch table (cgo/dispatch.go) picks between them.
//
//   out[m, n] = f16( sum_k A[m, k] * Wd[n, k] (+ bias[n]) ),  F32 accumulation,
//   Wd[n, k] = f16( f16(u[n, k] - z[g, n]) * scale[g, n] ),  g = k / group,
// u the stored nibble: level + 8 for symmetric weights (z = 8), the unsigned level for
// asymmetric ones (z = the zero point). u - z is exact in F16, so Wd is the float32
// dequantized weight of quant.DequantizeValue rounded once, with the scale in F16.
//
// ---- Packed weight layout, "tiled" (written once on the host by layout.PackW4A16Tiled) ----
// W is cut into tiles of 64 outputs (n) x 16 inputs (k); tile (nt, kt) = (n/64, k/16) is
// 512 bytes at byte offset (nt * K/16 + kt) * 512, so one 64-column strip streams
// contiguously along K. Inside a tile, lane l = 4g + t (g = l/4, t = l%4) of the consuming
// warp owns the 16 bytes at l * 16: four 32-bit words w_0..w_3. Nibble i (bits 4i..4i+3) of
// word w_j holds
//     n = nt*64 + 8*(2j + (i&3)/2) + g,      k = kt*16 + 8*(i&1) + 2t + (i>>2)
// i.e. word j carries n-tiles 2j and 2j+1 of the mma.m16n8k16 B operand, and nibbles
// (r, r+4) form fragment register r: r=0: b0 of n-tile 2j, r=1: b1 of 2j, r=2: b0 of 2j+1,
// r=3: b1 of 2j+1 (b0 = k 2t,2t+1; b1 = k 8+2t,8+2t+1; column g). So a thread turns one
// word into four F16x2 fragment registers with
//     lop3(w, 0x000F000F, 0x64006400)      = F16x2(1024 + u_0, 1024 + u_4)       - (1024+z)
//     lop3(w, 0x00F000F0, 0x64006400)      = F16x2(1024 + 16u_1, 1024 + 16u_5)  * 1/16 - (64+z)
//     the same on w >> 8 for nibbles (2,6) and (3,7)
// (the F16 exponent trick: OR-ing a nibble into the mantissa of 1024.0 makes 1024 + u
// exactly), then one F16x2 multiply by the group scale.
// Scales (and zeros, asymmetric only) are F16 [K/group, N/64, 8, 8]: entry (gi, nt, g, j)
// belongs to column nt*64 + 8j + g, so lane g reads its eight n-tiles' scales as one
// 16-byte vector.
//
// ---- Thread mapping ----
// A block has 4 warps; warp w owns the 64 output columns of n-strip blockIdx.x*4 + w and all
// BM = 16*MT rows of m-block blockIdx.y, over the K range of split blockIdx.z. K advances in
// 64-wide stages through a 4-deep cp.async ring in shared memory; a stage holds the A tile
// (BM rows x 128 bytes, XOR-swizzled chunks as in gemm_w8a8.cu, read with ldmatrix.x4), each
// warp's 4 weight tiles (2 KB, each lane copies and later reads back its own 16-byte
// vectors) and each warp's scales/zeros of the (at most 2) groups the stage touches.
//
// ---- Split-K (small M is memory-bound) ----
// When the (n, m) blocks cannot fill the GPU, gridDim.z = S blocks split K so every SM
// streams weights. Each writes F32 partials for its valid rows to the workspace. Who adds
// them is the caller's `reduce` argument (chosen by the Go dispatch table):
//   AUTOQ_SPLITK_LAST_BLOCK: the last block of a tile to arrive (per-tile atomic counter)
//     adds the S partials in split order 0..S-1, adds the bias and writes F16;
//   AUTOQ_SPLITK_REDUCE_KERNEL: splitk_reduce_kernel, launched right after over the whole
//     GPU, does the same per column pair (H100 run 2: 0.49-0.63x of cuBLAS at M = 128
//     against 0.29-0.59x for the last-block reduction, whose few threads serialise on L2).
// Both add in split order 0..S-1 from 0.0f (a fixed order, no float atomics): the same bits.
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"
#include "gemm_splitk.cuh"

namespace {


constexpr int kWarps = 4, kThreads = kWarps * 32, kBK = 64, kStages = 4;
constexpr int kBTileBytes = 512;                         // one 64n x 16k tile
constexpr int kBWarpStage = kBTileBytes * (kBK / 16);    // 2 KB per warp per stage
constexpr int kSZWarpStage = 4 * 128;                    // scales[2] + zeros[2] x 128 bytes


struct W4Args : W4A16Operands {
  int kstages;         // K / 64
  int stages_per_split;
  int *counters;
  float *partials; // [S, M, N]
  int defer_reduce; // split-K: only write partials; splitk_reduce_kernel adds them
};


template <int MT, bool ASYM>
__global__ void __launch_bounds__(kThreads) gemm_w4a16_tiled_kernel(W4Args p) {
  constexpr int BM = MT * 16, A_BYTES = BM * 128;
  constexpr int B_OFF = A_BYTES, SZ_OFF = B_OFF + kWarps * kBWarpStage;
  constexpr int STAGE_BYTES = SZ_OFF + kWarps * kSZWarpStage;
  extern __shared__ __align__(128) uint8_t smem[];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nstrips = p.N / 64, nt = blockIdx.x * kWarps + warp;
  const bool active = nt < nstrips;
  const int m0 = blockIdx.y * BM;
  const int s_begin = blockIdx.z * p.stages_per_split;
  const int s_end = min(p.kstages, s_begin + p.stages_per_split);
  const int nk = s_end - s_begin;
  const int ktiles16 = p.K / 16, ngroups_n = p.N / 64;
  const uint32_t smem_base = smem_u32(smem);

  auto load_stage = [&](int slot, int ks64) {
    const uint32_t st = smem_base + slot * STAGE_BYTES;
    const int k0 = ks64 * kBK;
#pragma unroll
    for (int i = tid; i < BM * 8; i += kThreads) {
      const int r = i >> 3, c = i & 7, m = m0 + r;
      const bool ok = m < p.M;
      const __half *src = ok ? p.A + (int64_t)m * p.K + k0 + c * 8 : p.A;
      cp_async16(st + swz(r, c), src, ok ? 16 : 0);
    }
    if (active) {
      const uint4 *src = p.W + ((int64_t)nt * ktiles16 + k0 / 16) * 32 + lane;
      const uint32_t dst = st + B_OFF + warp * kBWarpStage + lane * 16;
#pragma unroll
      for (int j = 0; j < kBK / 16; j++) cp_async16(dst + j * kBTileBytes, src + j * 32, 16);
      // Scales/zeros of the groups touching [k0, k0+64): slot 0 = group of k0, slot 1 = next.
      const int gi0 = k0 / p.group, gi1 = (k0 + kBK - 1) / p.group;
      const int which = (lane >> 3) & 1, gi = gi0 + which;
      const bool is_zero = lane >= 16;
      if ((which == 0 || gi1 != gi0) && (!is_zero || ASYM)) {
        const __half *base = is_zero ? p.zeros : p.scales;
        const __half *src2 = base + (((int64_t)gi * ngroups_n + nt) * 64) + (lane & 7) * 8;
        cp_async16(st + SZ_OFF + warp * kSZWarpStage + (is_zero ? 256 : 0) + which * 128 + (lane & 7) * 16, src2, 16);
      }
    }
  };

  float acc[MT][8][4];
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int v = 0; v < 4; v++) acc[i][j][v] = 0.0f;

  ring_prologue<kStages>(nk, s_begin, load_stage);

  const int g = lane >> 2;
  const uint32_t kMask0 = 0x000F000Fu, kMask1 = 0x00F000F0u, kExp = 0x64006400u;
  const __half2 kSixteenth = __float2half2_rn(1.0f / 16.0f);

  for (int it = 0; it < nk; it++) {
    ring_advance<kStages>(it, nk, s_begin, load_stage);
    if (!active) continue;
    const uint32_t st = smem_base + (it % kStages) * STAGE_BYTES;
    const uint8_t *st_ptr = smem + (it % kStages) * STAGE_BYTES;
    const int k0 = (s_begin + it) * kBK;
    const int boundary = (k0 / p.group + 1) * p.group; // first k of slot 1
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ks++) {
      const int slot = (k0 + ks * 16) >= boundary ? 1 : 0;
      const uint4 sc = *reinterpret_cast<const uint4 *>(st_ptr + SZ_OFF + warp * kSZWarpStage + slot * 128 + g * 16);
      uint4 zr = make_uint4(0, 0, 0, 0);
      if (ASYM) zr = *reinterpret_cast<const uint4 *>(st_ptr + SZ_OFF + warp * kSZWarpStage + 256 + slot * 128 + g * 16);
      const uint4 wv = *reinterpret_cast<const uint4 *>(st_ptr + B_OFF + warp * kBWarpStage + ks * kBTileBytes + lane * 16);
      const uint32_t wsrc[4] = {wv.x, wv.y, wv.z, wv.w};
      const uint32_t scw[4] = {sc.x, sc.y, sc.z, sc.w};
      const uint32_t zw[4] = {zr.x, zr.y, zr.z, zr.w};
      // The dequantization, inline: moving it into a helper gives ptxas a different schedule
      // (same instructions and registers), and this kernel's code must not change. Only the
      // zero terms are shared (w4_zero_terms: the same SASS as when they were written here).
      uint32_t bfrag[8][2];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const uint32_t w = wsrc[j], w8 = w >> 8;
        // n-tiles 2j (low half of scw[j]) and 2j+1 (high half).
        const __half2 s_pair = u2h(scw[j]);
        const __half2 s_lo = __low2half2(s_pair), s_hi = __high2half2(s_pair);
        __half2 zl_lo, zh_lo, zl_hi, zh_hi;
        w4_zero_terms<ASYM>(zw[j], zl_lo, zh_lo, zl_hi, zh_hi);
        const __half2 r0 = __hsub2(u2h(lop3_and_or(w, kMask0, kExp)), zl_lo);
        const __half2 r1 = __hfma2(u2h(lop3_and_or(w, kMask1, kExp)), kSixteenth, zh_lo);
        const __half2 r2 = __hsub2(u2h(lop3_and_or(w8, kMask0, kExp)), zl_hi);
        const __half2 r3 = __hfma2(u2h(lop3_and_or(w8, kMask1, kExp)), kSixteenth, zh_hi);
        bfrag[2 * j][0] = h2u(__hmul2(r0, s_lo));
        bfrag[2 * j][1] = h2u(__hmul2(r1, s_lo));
        bfrag[2 * j + 1][0] = h2u(__hmul2(r2, s_hi));
        bfrag[2 * j + 1][1] = h2u(__hmul2(r3, s_hi));
      }
#pragma unroll
      for (int i = 0; i < MT; i++) {
        uint32_t af[4];
        ldmatrix_x4(st + swz(i * 16 + (lane & 15), ks * 2 + (lane >> 4)), af);
#pragma unroll
        for (int j = 0; j < 8; j++) mma_f16(acc[i][j], af, bfrag[j][0], bfrag[j][1]);
      }
    }
  }
  cp_async_wait<0>();

  const int t = lane & 3;
  if (gridDim.z == 1) {
    if (!active) return;
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
      for (int j = 0; j < 8; j++) {
        const int row = m0 + i * 16 + g, col = nt * 64 + j * 8 + 2 * t;
        if (row < p.M) w4a16_store_out(p, row, col, acc[i][j][0], acc[i][j][1]);
        if (row + 8 < p.M) w4a16_store_out(p, row + 8, col, acc[i][j][2], acc[i][j][3]);
      }
    return;
  }

  if (active) {
    float *part = p.partials + (int64_t)blockIdx.z * p.M * p.N;
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
      for (int j = 0; j < 8; j++) {
        const int row = m0 + i * 16 + g, col = nt * 64 + j * 8 + 2 * t;
        if (row < p.M) *reinterpret_cast<float2 *>(part + (int64_t)row * p.N + col) = make_float2(acc[i][j][0], acc[i][j][1]);
        if (row + 8 < p.M)
          *reinterpret_cast<float2 *>(part + (int64_t)(row + 8) * p.N + col) = make_float2(acc[i][j][2], acc[i][j][3]);
      }
  }
  if (p.defer_reduce) return;
  const int tile = blockIdx.y * gridDim.x + blockIdx.x;
  if (!splitk_last_block(p.counters + tile, (int)gridDim.z)) return;
  const int ncols = min(kWarps * 64, p.N - (int)blockIdx.x * kWarps * 64);
  const int rows = min(BM, p.M - m0);
  for (int i = tid; i < rows * (ncols / 2); i += kThreads) {
    const int r = i / (ncols / 2), c = (i % (ncols / 2)) * 2;
    const int row = m0 + r, col = blockIdx.x * kWarps * 64 + c;
    float s0 = 0.0f, s1 = 0.0f;
    for (int z = 0; z < (int)gridDim.z; z++) {
      const float2 v = __ldcg(reinterpret_cast<const float2 *>(p.partials + ((int64_t)z * p.M + row) * p.N + col));
      s0 = __fadd_rn(s0, v.x);
      s1 = __fadd_rn(s1, v.y);
    }
    w4a16_store_out(p, row, col, s0, s1);
  }
}

// The epilogue, for splitk_reduce_kernel.
struct W4Store {
  __device__ void operator()(const W4Args &p, int row, int col, float v0, float v1) const {
    w4a16_store_out(p, row, col, v0, v1);
  }
};

// The tile (MT by M), the grid and the split of K (F32 partials no larger than the packed
// weights, S*M*N*4 <= N*K/2 bytes: S <= K / (8M); at most 32 splits).
struct Plan : SplitK {
  int mt, smem, gx, gy, kstages;
};

Plan make_plan(int dev, int64_t M, int64_t N, int64_t K) {
  Plan pl{};
  pl.mt = M <= 16 ? 1 : (M <= 32 ? 2 : 4);
  const int bm = pl.mt * 16;
  pl.smem = kStages * (bm * 128 + kWarps * (kBWarpStage + kSZWarpStage));
  pl.gx = (int)((N / 64 + kWarps - 1) / kWarps);
  pl.gy = (int)((M + bm - 1) / bm);
  pl.kstages = (int)(K / kBK);
  static_cast<SplitK &>(pl) =
      splitk_plan(dev, (int64_t)pl.gx * pl.gy, pl.kstages, K / (8 * M), 32, (size_t)M * N * sizeof(float));
  return pl;
}

template <int MT, bool ASYM>
int launch(int dev, const Plan &pl, const W4Args &a, cudaStream_t st, const char *op) {
  static bool configured[64];
  return splitk_launch(dev, configured, gemm_w4a16_tiled_kernel<MT, ASYM>, splitk_reduce_kernel<W4Args, float, W4Store>,
                       a, dim3(pl.gx, pl.gy, pl.splits), kThreads, pl.smem, st, "gemm_w4a16_tiled_kernel", op);
}

} // namespace

extern "C" size_t autoq_gemm_w4a16_tiled_workspace_bytes(int dev, int64_t M, int64_t N, int64_t K) {
  if (M < 1 || N < 64 || K < 64) return 0;
  return make_plan(dev, M, N, K).workspace_bytes();
}

extern "C" int autoq_gemm_w4a16_tiled(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                      const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                      int64_t K, int64_t group, int reduce, void *workspace, size_t workspace_bytes,
                                      void *stream) {
  const char *op = "autoq_gemm_w4a16_tiled";
  AUTOQ_TRY(splitk_check_reduce(op, reduce));
  AUTOQ_TRY(w4a16_check_shape(op, M, N, K, group));
  if (M > (1LL << 30) || N > (1LL << 30) || K > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld too large", op, (long long)M,
                           (long long)N, (long long)K);
  AUTOQ_TRY(w4a16_check_pointers(op, A_f16, W_packed, scales_f16, zeros_f16, out_f16));
  AUTOQ_TRY(autoq_use_device(dev, op));
  const Plan pl = make_plan(dev, M, N, K);
  AUTOQ_TRY(splitk_check_rows(op, M, pl.gy));
  W4Args a{};
  w4a16_set_operands(a, A_f16, W_packed, scales_f16, zeros_f16, bias, out_f16, M, N, K, group);
  a.kstages = pl.kstages, a.stages_per_split = pl.per_split;
  a.defer_reduce = reduce == AUTOQ_SPLITK_REDUCE_KERNEL ? 1 : 0;
  AUTOQ_TRY(splitk_use_workspace(pl, a, workspace, workspace_bytes, M, N, K, "autoq_gemm_w4a16_tiled_workspace_bytes",
                                 op));
  cudaStream_t st = (cudaStream_t)stream;
  const bool asym = zeros_f16 != nullptr;
  switch (pl.mt) {
  case 1:
    return asym ? launch<1, true>(dev, pl, a, st, op) : launch<1, false>(dev, pl, a, st, op);
  case 2:
    return asym ? launch<2, true>(dev, pl, a, st, op) : launch<2, false>(dev, pl, a, st, op);
  default:
    return asym ? launch<4, true>(dev, pl, a, st, op) : launch<4, false>(dev, pl, a, st, op);
  }
}
