// gemm_w4a16_swapped.cu: W4A16 for M <= 16 with the weight as the MMA's A operand (the
// "swapped" orientation Machete uses): mma.m16n8k16 with 16 OUTPUT COLUMNS as its m rows and
// the tokens as its n = 8 columns, so a token tile of 8 wastes nothing at M <= 8 (the tiled and
// strip kernels put the tokens on m = 16 and waste half of every MMA below M = 16). Persistent
// blocks over stripes of the flattened (64-column strip, 256-input chunk) units
// (gemm_w4a16_stripes.cuh), weights through a 4-stage cp.async ring with an L2 evict-first
// hint, the group size a template parameter.
//
// Same function as the other W4A16 kernels (out = f16(sum_k A * f16(f16(u - z) * scale)
// (+ bias)), F32 accumulation), on the SAME packed weight (layout.PackW4A16Tiled): only the F32
// summation order differs. Deterministic.
//
// ---- Block ----
// 4 warps, one 64-column strip at a time. A unit is 256 inputs of the strip: 16 k16 tiles of
// 512 bytes, contiguous in the tiled layout (8 KB, one cp.async of 16 bytes per thread x 4),
// plus the unit's activations (8*MT8 token rows x 512 bytes, rows >= M zero-filled) and the
// scales (and zeros) of the groups it touches (256/G entries of 128 bytes: a lane's 8 scales,
// one per n-tile, are one 16-byte vector). Warp w takes tiles 4w..4w+3 of every unit; its lane
// reads its own 16 bytes of a tile (4 words: 4 m16 sub-tiles of the strip), turns each word
// into one A fragment (w4_dequant_word, w4_swapped_afrag) and multiplies it with the B
// fragments of MT8 token tiles (ldmatrix from the swizzled activation tile). The group slot of
// tile tl is (16*tl)/G: shifts by constants, no run-time division. At the end of a segment the
// 4 warps' sums go through shared memory (added in warp order) and warp 0 finishes the strip
// (stripe_finish: direct store, or partials and the ordered last-arrival reduction).
//
// ---- Prediction, before any GPU run (METHOD.md) ----
// The strip kernel (runs 3-6: 1.88x geomean at M <= 16 over cuBLAS on llama2-7b shapes) issues
// ~1,300 instructions per 4 KB warp iteration, 64 of them HMMA. Here a warp spends per 512-byte
// tile: one 16-byte shared load, 4 x ~9 dequantization instructions, one ldmatrix, one scale
// load, 4*MT8 HMMA: ~45 instructions, so ~360 per 4 KB (3.6x fewer), and every byte of weight
// is in flight through the ring (3 stages x 8 KB per block, 2 blocks per SM: 48 KB per SM).
// Expected: bandwidth-bound at 2.6-2.9 TB/s plus ~4-5 us fixed: llama2-7b M = 1 o 7.5-8 us,
// qkv 14-15, gate_up 20-22, down 13-14 (geomean ~2.5-2.8x); llama2-70b shapes (4x the bytes)
// closer to the bandwidth ratio, ~3.0-3.4x. M = 16 within 10% of M = 1.
#include "autoq_gemm.h"
#include "gemm_w4a16_stripes.cuh"

namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32, kStages = 4;
constexpr int kUK = 256, kWBytes = (kUK / 16) * 512;

template <int MT8, int G, bool ASYM>
struct Geo {
  static constexpr int R = 8 * MT8;                // staged token rows
  static constexpr int A_OFF = kWBytes;            // activations [R][512 bytes], swizzled
  static constexpr int S_OFF = A_OFF + R * kUK * 2; // scales [NG][128 bytes], then zeros
  static constexpr int NG = G > 0 ? kUK / G : 1;
  static constexpr int STAGE = S_OFF + NG * 128 * (ASYM ? 2 : 1);
  static constexpr int NV = 16 * MT8; // accumulators per lane
  // The end-of-segment warp sums reuse the consumed stage's memory.
  static_assert(4 * NV * 32 * (int)sizeof(float) <= STAGE, "warp sums must fit in one stage");
};

struct SwapArgs : W4A16Operands {
  StripeCtx s;
};

template <int MT8, int G, bool ASYM>
__global__ void __launch_bounds__(kThreads) gemm_w4a16_swapped_kernel(SwapArgs p) {
  using Ge = Geo<MT8, G, ASYM>;
  constexpr int NV = Ge::NV;
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
    const uint32_t st = base + slot * Ge::STAGE;
    const uint4 *wsrc = p.W + ((int64_t)T * ktiles + k0 / 16) * 32;
#pragma unroll
    for (int i = tid; i < kWBytes / 16; i += kThreads) cp_async16_hint(st + i * 16, wsrc + i, pol);
#pragma unroll
    for (int i = tid; i < Ge::R * 32; i += kThreads) {
      const int r = i >> 5, c = i & 31;
      const bool ok = r < p.M;
      cp_async16(st + Ge::A_OFF + w4_swz512(r, c), ok ? p.A + (int64_t)r * p.K + k0 + c * 8 : p.A, ok ? 16 : 0);
    }
    const int gi0 = G > 0 ? k0 / G : k0 / p.group;
    for (int i = tid; i < Ge::NG * 8 * (ASYM ? 2 : 1); i += kThreads) {
      const int z = i / (Ge::NG * 8), rem = i % (Ge::NG * 8), gg = rem >> 3, c = rem & 7;
      const __half *src = (z ? p.zeros : p.scales) + ((int64_t)(gi0 + gg) * nstrips + T) * 64 + c * 8;
      cp_async16(st + Ge::S_OFF + (z * Ge::NG + gg) * 128 + c * 16, src, 16);
    }
  };

  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; v++) acc[v] = 0.0f;
  ring_prologue<kStages>(n, u0, load);

  for (int i = 0; i < n; i++) {
    ring_advance<kStages>(i, n, u0, load);
    const int slot = i % kStages;
    const uint8_t *sp = smem + slot * Ge::STAGE;
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int tl = warp * 4 + q;
      const uint4 wv = *reinterpret_cast<const uint4 *>(sp + tl * 512 + lane * 16);
      const int gs = G > 0 ? (tl * 16) / G : 0;
      const uint4 sc = *reinterpret_cast<const uint4 *>(sp + Ge::S_OFF + gs * 128 + g * 16);
      uint4 zr = make_uint4(0, 0, 0, 0);
      if (ASYM) zr = *reinterpret_cast<const uint4 *>(sp + Ge::S_OFF + (Ge::NG + gs) * 128 + g * 16);
      int row, chunk;
      w4_swapped_ldm(lane, tl, MT8, row, chunk);
      uint32_t b[2][2];
      const uint32_t addr = base + slot * Ge::STAGE + Ge::A_OFF + w4_swz512(row, chunk);
      if (MT8 == 2)
        ldmatrix_x4(addr, b[0][0], b[0][1], b[1][0], b[1][1]);
      else
        ldmatrix_x2(addr, b[0][0], b[0][1]);
      const uint32_t ws[4] = {wv.x, wv.y, wv.z, wv.w}, scw[4] = {sc.x, sc.y, sc.z, sc.w};
      const uint32_t zw[4] = {zr.x, zr.y, zr.z, zr.w};
#pragma unroll
      for (int jw = 0; jw < 4; jw++) {
        uint32_t r[4], a[4];
        w4_dequant_word<ASYM>(ws[jw], scw[jw], zw[jw], r);
        w4_swapped_afrag(r, a);
#pragma unroll
        for (int n8 = 0; n8 < MT8; n8++) mma_f16(&acc[(jw * MT8 + n8) * 4], a, b[n8][0], b[n8][1]);
      }
    }
    const int u = u0 + i, T = u / p.s.KS;
    if (i + 1 < n && (u + 1) / p.s.KS == T) continue;
    // End of this block's segment of strip T: the warps' sums, in warp order, then finish.
    __syncthreads(); // every warp is done with this slot, which holds the sums now
    float *red = reinterpret_cast<float *>(smem + slot * Ge::STAGE);
#pragma unroll
    for (int v = 0; v < NV; v++) red[(warp * NV + v) * 32 + lane] = acc[v];
    __syncthreads();
    if (warp == 0) {
#pragma unroll
      for (int v = 0; v < NV; v++) {
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; w++) s = __fadd_rn(s, red[(w * NV + v) * 32 + lane]);
        acc[v] = s;
      }
    }
    stripe_finish<NV>(p.s, T, acc, warp == 0, lane, 32, [&](float (&f)[NV]) {
#pragma unroll
      for (int v = 0; v < NV; v++) {
        const int jw = v / (4 * MT8), n8 = (v / 4) % MT8, e = v % 4;
        int col, tok;
        w4_swapped_cfrag(lane, jw, n8, e, col, tok);
        col += T * 64;
        if (tok < p.M)
          p.out[(int64_t)tok * p.N + col] = __float2half_rn(p.bias != nullptr ? __fadd_rn(f[v], p.bias[col]) : f[v]);
      }
    });
#pragma unroll
    for (int v = 0; v < NV; v++) acc[v] = 0.0f;
  }
  cp_async_wait<0>();
}

// At most 2 blocks per SM; a tile is one 64-column strip, its partials held by warp 0's lanes.
template <int MT8, int G, bool ASYM>
int launch(int dev, SwapArgs a, size_t ws_bytes, void *ws, cudaStream_t st, const char *op) {
  using Ge = Geo<MT8, G, ASYM>;
  a.s.U = (a.N / 64) * a.s.KS;
  return w4_stripes_launch<gemm_w4a16_swapped_kernel<MT8, G, ASYM>>(dev, a, kThreads, Ge::STAGE * kStages, 2,
                                                                    Ge::NV * 32, ws, ws_bytes, st,
                                                                    "autoq_gemm_w4a16_swapped_workspace_bytes",
                                                                    "gemm_w4a16_swapped_kernel", op);
}

template <int MT8, bool ASYM>
int launch_g(int dev, const SwapArgs &a, size_t wsb, void *ws, cudaStream_t st, const char *op) {
  switch (w4_static_group(kW4Swapped, a.group)) {
  case 32: return launch<MT8, 32, ASYM>(dev, a, wsb, ws, st, op);
  case 64: return launch<MT8, 64, ASYM>(dev, a, wsb, ws, st, op);
  case 128: return launch<MT8, 128, ASYM>(dev, a, wsb, ws, st, op);
  }
  return launch<MT8, 0, ASYM>(dev, a, wsb, ws, st, op);
}

// The template for the call: MT8 by M, then symmetric or not.
template <int MT8>
int launch_m(int dev, const SwapArgs &a, size_t wsb, void *ws, cudaStream_t st, const char *op) {
  return a.zeros != nullptr ? launch_g<MT8, true>(dev, a, wsb, ws, st, op)
                            : launch_g<MT8, false>(dev, a, wsb, ws, st, op);
}

} // namespace

// Counters, then two partial slots per block (at most 2 blocks per SM, 32 lanes x NV floats).
extern "C" size_t autoq_gemm_w4a16_swapped_workspace_bytes(int dev) {
  return kCounterBytes + (size_t)gemm_sm_count(dev) * 2 * 2 * Geo<2, 0, false>::NV * 32 * sizeof(float);
}

extern "C" int autoq_gemm_w4a16_swapped(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                        const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                        int64_t K, int64_t group, void *workspace, size_t workspace_bytes,
                                        void *stream) {
  const char *op = "autoq_gemm_w4a16_swapped";
  AUTOQ_TRY(w4_stripes_check(kW4Swapped, op,
                             "the swapped kernel needs M <= 16, K a multiple of 256 and a group of 32, 64, 128 or a "
                             "multiple of 256",
                             dev, M, N, K, group, A_f16, W_packed, scales_f16, zeros_f16, out_f16));
  SwapArgs a{};
  w4a16_set_operands(a, A_f16, W_packed, scales_f16, zeros_f16, bias, out_f16, M, N, K, group);
  a.s.KS = (int)(K / kUK);
  cudaStream_t st = (cudaStream_t)stream;
  if (M <= 8) return launch_m<1>(dev, a, workspace_bytes, workspace, st, op);
  return launch_m<2>(dev, a, workspace_bytes, workspace, st, op);
}
