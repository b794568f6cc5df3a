// gemm_w4a16_mma.cu: W4A16 for M = 17..256 (the "mma stripes" kernel): activations as the
// mma.m16n8k16 A operand (ldmatrix from a swizzled tile), the weight dequantized in registers
// as B and reused by every m16 tile of the block, persistent blocks over stripes of the
// flattened (row block, 256-column block, 64-input chunk) units (gemm_w4a16_stripes.cuh), a
// 4-stage cp.async ring with an L2 evict-first hint on the weights, the group size a template
// parameter. Same packed weight as every W4A16 kernel (layout.PackW4A16Tiled) and the same
// function; only the F32 summation order differs. Deterministic.
//
// What changes against the tiled kernel at these M (runs 2-6: 0.49-0.63x of cuBLAS FP16 at
// M = 128, 0.36x at M = 1024): no split-K over a fixed grid with a second reduction kernel
// and M x N x S partials; each block streams an equal share of the units and only tiles cut by
// a block boundary exchange partials (at most two per block); no per-stage run-time division
// for the group slot (G static); the weights do not displace the activations in L2.
//
// ---- Block ----
// 4 warps; warp w owns the 64-column strip 4*cb + w of column block cb and all BM = 16*MT rows
// of row block mb (MT = 2 up to M = 32, else 4; M > 64 runs ceil(M/64) row blocks as separate
// tiles, re-streaming the weights from L2/HBM once per row block, as Marlin does). A unit is 64
// inputs: per warp 4 tiles of 512 bytes (2 KB contiguous), the block's BM x 128-byte activation
// tile and each strip's scales of the unit's groups. Per k16 tile a warp dequantizes its 4 words
// into the B fragments of 8 n-tiles (w4_dequant_word) and runs MT x 8 MMAs with them.
//
// ---- Prediction, before any GPU run ----
// M = 128 on 4096x4096: 4.3 GFLOP; mma.sync F16 on an H100 reaches ~550-650 TFLOP/s, so ~7-8 us
// of MMA issue, ~2 x 8 MB of weight traffic (two row blocks; the second mostly from L2), and the
// exchange of ~2 x 132 partial tiles of 64 KB through L2: ~15-20 us against cuBLAS FP16's ~31 us
// (run 1): 1.5-2x if the MMA pipe stays fed; below 1x would mean the partial exchange or the
// dequantization (a third of the issue slots at MT = 4) dominates.
#include "autoq_gemm.h"
#include "gemm_w4a16_stripes.cuh"

namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32, kStages = 4;
constexpr int kUK = 64, kWBytes = kWarps * (kUK / 16) * 512;

template <int MT, int G, bool ASYM>
struct Geo {
  static constexpr int BM = 16 * MT;
  static constexpr int A_OFF = kWBytes;             // activations [BM][128 bytes], swizzled
  static constexpr int S_OFF = A_OFF + BM * 128;    // scales [NG][4 strips][128 bytes], zeros after
  static constexpr int NG = G > 0 ? kUK / G : 1;
  static constexpr int STAGE = S_OFF + NG * kWarps * 128 * (ASYM ? 2 : 1);
  static constexpr int NV = MT * 8 * 4;
};

// W4A16Operands' members, declared here: deriving from it changes this kernel's register
// allocation (the swapped and tiled kernels compile to the same code either way).
struct MMAArgs {
  const __half *A;
  const uint4 *W;
  const __half *scales, *zeros;
  const float *bias;
  __half *out;
  int M, N, K, group;
  int ncb; // 256-column blocks
  StripeCtx s;
};

// Ends the block's segment of tile T (mma kernel): stripe_finish with the F16 store.
template <int MT>
__device__ __noinline__ void finish_tile(const MMAArgs &p, int T, int mb, int cb, float (&f)[MT * 32], bool active) {
  constexpr int NV = MT * 32, BM = MT * 16;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  stripe_finish<NV>(p.s, T, f, active, threadIdx.x, kThreads, [&](float (&x)[NV]) {
    const int col0 = (cb * kWarps + warp) * 64;
    float bs[8][2];
#pragma unroll
    for (int j = 0; j < 8; j++) {
      int r, c;
      w4_mma_cfrag(lane, 0, j, 0, r, c);
      bs[j][0] = p.bias != nullptr ? p.bias[col0 + c] : 0.0f;
      bs[j][1] = p.bias != nullptr ? p.bias[col0 + c + 1] : 0.0f;
    }
#pragma unroll
    for (int v = 0; v < NV; v += 2) {
      const int mi = v / 32, j = (v / 4) % 8, e = v % 4;
      int row, col;
      w4_mma_cfrag(lane, mi, j, e, row, col);
      row += mb * BM;
      col += col0;
      if (row < p.M) {
        const float a = p.bias != nullptr ? __fadd_rn(x[v], bs[j][0]) : x[v];
        const float b = p.bias != nullptr ? __fadd_rn(x[v + 1], bs[j][1]) : x[v + 1];
        *reinterpret_cast<__half2 *>(p.out + (int64_t)row * p.N + col) = __halves2half2(__float2half_rn(a), __float2half_rn(b));
      }
    }
  });
}

template <int MT, int G, bool ASYM>
__global__ void __launch_bounds__(kThreads) gemm_w4a16_mma_kernel(MMAArgs p) {
  using Ge = Geo<MT, G, ASYM>;
  constexpr int NV = Ge::NV, BM = Ge::BM;
  extern __shared__ __align__(128) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2;
  const int u0 = stripe_begin(blockIdx.x, p.s.P, p.s.U), u1 = stripe_begin(blockIdx.x + 1, p.s.P, p.s.U);
  const int n = u1 - u0;
  const uint32_t base = smem_u32(smem);
  const uint64_t pol = w4_evict_first_policy();
  const int ktiles = p.K / 16, nstrips = p.N / 64;

  auto load = [&](int slot, int u) {
    const int T = u / p.s.KS;
    const int k0 = (u - T * p.s.KS) * kUK;
    const int mb = T / p.ncb, cb = T % p.ncb;
    const uint32_t st = base + slot * Ge::STAGE;
#pragma unroll
    for (int i = tid; i < kWBytes / 16; i += kThreads) {
      const int s = i >> 7, c = i & 127, nt = cb * kWarps + s;
      if (nt < nstrips) cp_async16_hint(st + i * 16, p.W + ((int64_t)nt * ktiles + k0 / 16) * 32 + c, pol);
    }
#pragma unroll
    for (int i = tid; i < BM * 8; i += kThreads) {
      const int r = i >> 3, c = i & 7, m = mb * BM + r;
      const bool ok = m < p.M;
      cp_async16(st + Ge::A_OFF + swz(r, c), ok ? p.A + (int64_t)m * p.K + k0 + c * 8 : p.A, ok ? 16 : 0);
    }
    const int gi0 = G > 0 ? k0 / G : k0 / p.group;
    for (int i = tid; i < Ge::NG * kWarps * 8 * (ASYM ? 2 : 1); i += kThreads) {
      const int per = Ge::NG * kWarps * 8;
      const int z = i / per, rem = i % per, gg = rem / (kWarps * 8), s = (rem >> 3) % kWarps, c = rem & 7;
      const int nt = cb * kWarps + s;
      if (nt < nstrips) {
        const __half *src = (z ? p.zeros : p.scales) + ((int64_t)(gi0 + gg) * nstrips + nt) * 64 + c * 8;
        cp_async16(st + Ge::S_OFF + ((z * Ge::NG + gg) * kWarps + s) * 128 + c * 16, src, 16);
      }
    }
  };

  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; v++) acc[v] = 0.0f;
  ring_prologue<kStages>(n, u0, load);

  for (int i = 0; i < n; i++) {
    ring_advance<kStages>(i, n, u0, load);
    const int u = u0 + i, T = u / p.s.KS;
    const int mb = T / p.ncb, cb = T % p.ncb;
    const bool active = cb * kWarps + warp < nstrips;
    const int slot = i % kStages;
    const uint8_t *sp = smem + slot * Ge::STAGE;
    const uint32_t sa = base + slot * Ge::STAGE + Ge::A_OFF;
    if (active) {
#pragma unroll
      for (int kt = 0; kt < kUK / 16; kt++) {
        const uint4 wv = *reinterpret_cast<const uint4 *>(sp + warp * 2048 + kt * 512 + lane * 16);
        const int gs = G > 0 ? (kt * 16) / G : 0;
        const uint4 sc = *reinterpret_cast<const uint4 *>(sp + Ge::S_OFF + (gs * kWarps + warp) * 128 + g * 16);
        uint4 zr = make_uint4(0, 0, 0, 0);
        if (ASYM)
          zr = *reinterpret_cast<const uint4 *>(sp + Ge::S_OFF + ((Ge::NG + gs) * kWarps + warp) * 128 + g * 16);
        const uint32_t ws[4] = {wv.x, wv.y, wv.z, wv.w}, scw[4] = {sc.x, sc.y, sc.z, sc.w};
        const uint32_t zw[4] = {zr.x, zr.y, zr.z, zr.w};
        uint32_t bf[4][4];
#pragma unroll
        for (int j = 0; j < 4; j++) w4_dequant_word<ASYM>(ws[j], scw[j], zw[j], bf[j]);
#pragma unroll
        for (int mi = 0; mi < MT; mi++) {
          uint32_t af[4];
          ldmatrix_x4(sa + swz(mi * 16 + (lane & 15), kt * 2 + (lane >> 4)), af);
#pragma unroll
          for (int j = 0; j < 4; j++) {
            mma_f16(&acc[(mi * 8 + 2 * j) * 4], af, bf[j][0], bf[j][1]);
            mma_f16(&acc[(mi * 8 + 2 * j + 1) * 4], af, bf[j][2], bf[j][3]);
          }
        }
      }
    }
    if (i + 1 < n && (u + 1) / p.s.KS == T) continue;
    {
      // Out of line (a call at segment ends only): inlined, its addressing pushes the main
      // loop past 255 registers at MT = 4.
      float f[NV];
#pragma unroll
      for (int v = 0; v < NV; v++) f[v] = acc[v];
      finish_tile<MT>(p, T, mb, cb, f, active);
    }
#pragma unroll
    for (int v = 0; v < NV; v++) acc[v] = 0.0f;
  }
  cp_async_wait<0>();
}

// One block per SM (the accumulators take most registers); a tile is MT m16 tiles x 256 columns.
template <int MT, int G, bool ASYM>
int launch(int dev, MMAArgs a, size_t ws_bytes, void *ws, cudaStream_t st, const char *op) {
  using Ge = Geo<MT, G, ASYM>;
  a.ncb = (a.N + 255) / 256;
  a.s.U = ((a.M + Ge::BM - 1) / Ge::BM) * a.ncb * a.s.KS;
  return w4_stripes_launch<gemm_w4a16_mma_kernel<MT, G, ASYM>>(dev, a, kThreads, Ge::STAGE * kStages, 1,
                                                               Ge::NV * kThreads, ws, ws_bytes, st,
                                                               "autoq_gemm_w4a16_mma_workspace_bytes",
                                                               "gemm_w4a16_mma_kernel", op);
}

template <int MT, bool ASYM>
int launch_g(int dev, const MMAArgs &a, size_t wsb, void *ws, cudaStream_t st, const char *op) {
  switch (w4_static_group(kW4MMA, a.group)) {
  case 32: return launch<MT, 32, ASYM>(dev, a, wsb, ws, st, op);
  }
  return launch<MT, 0, ASYM>(dev, a, wsb, ws, st, op);
}

// The template for the call: MT by M, then symmetric or not.
template <int MT>
int launch_m(int dev, const MMAArgs &a, size_t wsb, void *ws, cudaStream_t st, const char *op) {
  return a.zeros != nullptr ? launch_g<MT, true>(dev, a, wsb, ws, st, op)
                            : launch_g<MT, false>(dev, a, wsb, ws, st, op);
}

} // namespace

extern "C" int autoq_gemm_w4a16_fits(int kernel, int64_t M, int64_t N, int64_t K, int64_t group) {
  return w4_stripes_fit(kernel, M, N, K, group);
}

// Counters, then two partial slots per block (one block per SM, 128 threads x NV floats).
extern "C" size_t autoq_gemm_w4a16_mma_workspace_bytes(int dev, int64_t M) {
  const size_t nv = M <= 32 ? Geo<2, 0, false>::NV : Geo<4, 0, false>::NV;
  return kCounterBytes + (size_t)gemm_sm_count(dev) * 2 * nv * kThreads * sizeof(float);
}

extern "C" int autoq_gemm_w4a16_mma(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                    const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                    int64_t K, int64_t group, void *workspace, size_t workspace_bytes, void *stream) {
  const char *op = "autoq_gemm_w4a16_mma";
  AUTOQ_TRY(w4_stripes_check(kW4MMA, op,
                             "the mma kernel needs a group of 32 or a multiple of 64 and at most 4096 output tiles",
                             dev, M, N, K, group, A_f16, W_packed, scales_f16, zeros_f16, out_f16));
  MMAArgs a{};
  w4a16_set_operands(a, A_f16, W_packed, scales_f16, zeros_f16, bias, out_f16, M, N, K, group);
  a.s.KS = (int)(K / kUK);
  cudaStream_t st = (cudaStream_t)stream;
  if (M <= 32) return launch_m<2>(dev, a, workspace_bytes, workspace, st, op);
  return launch_m<4>(dev, a, workspace_bytes, workspace, st, op);
}
