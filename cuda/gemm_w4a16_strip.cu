// gemm_w4a16_strip.cu: W4A16 for small M (1..16), one launch per GEMM, no workspace: the
// "strip" kernel (it was variant 3 before the variants were named; H100 runs 3-6).
//
// Same function as gemm_w4a16_tiled.cu (out = f16(sum_k A * f16(f16(u - z) * scale) (+ bias)),
// F32 accumulation, the same lop3 / 0x6400 dequantization bit for bit, mma.m16n8k16), on
// weights packed in a different order (layout.PackW4A16Strip), so the outputs differ from
// the tiled kernel's only by the F32 summation order.
//
// Why: at M <= 16 the second H100 run fits every kernel (ours and cuBLAS) to
// time = ~6.5-7 us + bytes / BW; the tiled kernel streams at only ~2 TB/s on top of that
// fixed part and adds split-K round trips (partials to L2, fence, atomic counter, re-read) to
// it. Its 64-column tiles leave only N/64 column strips (64 for a 4096-wide output), so K
// had to be split across blocks. This kernel packs 8-column strips instead: a block owns 16
// output columns and the WHOLE K (N/16 blocks: 256 for N = 4096, about two per SM), its 8
// warps split K and add their sums in shared memory in a fixed order. One launch, no
// partials, no counters, no memset, and the weights are the first thing each warp asks for.
//
// ---- Packed weight layout, "strip" (written once on the host by layout.PackW4A16Strip) ----
// Kp = K rounded up to 128 (the padding nibbles are never multiplied by anything but the
// zero activations the kernel substitutes for k >= K). W is cut into tiles of 8 outputs (n) x
// 128 inputs (k); tile (s, kt) = (n/8, k/128) is 512 bytes at byte offset (s*Kp/128 + kt)*512,
// so one 8-column strip streams contiguously along K. Inside a tile, lane l = 4g + t owns the
// 16 bytes at l*16: column n = 8s + g and the 32 consecutive inputs k = 128kt + 32t + 0..31.
// Word j (bytes 4j..4j+3) holds k = 128kt + 32t + 8j + (0..7); nibble i = 4h + 2c + b of the
// word (bits 4i..4i+3) holds local k = 8j + 4c + 2b + h. The mma.m16n8k16 steps of a tile are
// s = 0..7 (s = 2j + c): step s uses physical k 32t + 4s + {0,1} as logical k {2t, 2t+1} (b0,
// a0) and 32t + 4s + {2,3} as logical k {8+2t, 9+2t} (b1, a2). A dot product does not care
// which physical k a logical k is as long as A and B agree, and the A fragments of lane (g, t)
// are then the 64 contiguous bytes A[g][128kt + 32t ..]: four 16-byte loads, words (x, y) of
// load q = (a0, a2) of step 2q, words (z, w) = step 2q + 1. So one word gives four F16x2
// fragment registers exactly as in the tiled kernel:
//     lop3(w, 0x000F000F, 0x64006400) = (1024 + u_0, 1024 + u_4)            b0 of step 2j
//     lop3(w, 0x00F000F0, 0x64006400) = (1024 + 16u_1, 1024 + 16u_5)        b1 of step 2j
//     the same on w >> 8                                                    step 2j + 1
// Groups are multiples of 32 aligned at 0, so a lane's 32 inputs lie in one group: one scale
// (and zero) per lane per tile. Scales and zeros are F16 [K/group, N] row-major (column
// contiguous).
//
// ---- Thread mapping ----
// Block = 8 warps; blockIdx.y = a group of NS 8-column strips (NS = 2: 16 columns; NS = 4: 32
// columns, used from M = 5 on when N/32 blocks still give two per SM: every block reads all
// of A, M*K*2 bytes, against NS*4*K weight bytes, so wider blocks halve that L1/L2 traffic);
// blockIdx.x = 16-row chunk of M (M > 16 runs ceil(M/16) chunks; the chunks of a column group
// are neighbours in launch order, so they share its weights through L2, but the MMAs are 16
// rows wide: correct, not fast; this kernel is meant for M <= 16). Warp w takes K tiles w, w+8, w+16,
// ... of the block's strips, 8/NS tiles of each (8 16-byte vectors, 4 KB per warp) in flight
// as a register ring loaded with ld.global.nc.L1::no_allocate; activations come straight from
// global memory through L1 with 16-byte __ldg (no shared-memory staging, no barrier in the K
// loop). The 8 warp sums go through shared memory and are added in warp order 0..7 from
// 0.0f: reproducible bits.
//
// ---- Prediction, written before the first GPU run (METHOD.md) ----
// Run 2 fits time = F + bytes / BW at M = 1: cuBLAS F16 F = 6.6 us, BW = 2.93 TB/s; W8A8
// 6.5 us, 2.83 TB/s; W4A16 tiled 6.9 us, 1.99 TB/s. If F is mostly the tiled kernel's
// dependent split-K chain, this kernel has F ~ 4.5 us and streams at ~2.8 TB/s (64 KB in
// flight per SM; dequantization ~40% of issue slots): llama2-7b M = 1 o 7.5 us (2.4x), qkv 13.5 (3.1x), gate_up 20.6 (3.3x),
// down 12.6 (2.95x), geomean ~2.9x; M = 16 ~10% slower (twice the A loads). If F is launch
// and event overhead that cuBLAS pays too (F stays ~6.5 us): 1.9x / 2.7x / 3.0x / 2.55x,
// geomean ~2.5x, and 3x at M = 1 is out of reach for o_proj-sized GEMMs with this timing.
#include "autoq_gemm.h"
#include "common.cuh"
#include "gemm_common.cuh"

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kRing = 8; // 16-byte weight vectors in flight per lane (4 KB per warp)
constexpr int kTileK = 128;


struct StripArgs {
  const __half *A;
  const uint4 *W;
  const unsigned short *scales, *zeros; // F16 bits [K/group, N]
  const float *bias;
  __half *out;
  int M, N, K, group;
  int ktiles; // Kp / 128
};

// The dequantization of one lane's tile vector, with the tiled kernel's arithmetic: f16(u - z)
// exact, then one F16 multiply by the scale. A lane's 32 inputs share one scale (and zero),
// so both halves of every F16x2 use the same: s2 = (scale, scale), zl = 1024 + z and
// zh = -(64 + z) in both halves.
struct StripDequant {
  __half2 s2, zl, zh;
  template <bool ASYM>
  __device__ __forceinline__ static StripDequant of(uint32_t sc, uint32_t zr) {
    StripDequant d;
    d.s2 = u2h(sc | (sc << 16));
    if (ASYM) {
      const __half2 z2 = u2h(zr | (zr << 16));
      d.zl = __hadd2(z2, u2h(0x64006400u));          // 1024 + z
      d.zh = __hneg2(__hadd2(z2, u2h(0x54005400u))); // -(64 + z)
    } else {
      d.zl = u2h(0x64086408u); // 1032 = 1024 + 8
      d.zh = u2h(0xD480D480u); // -72 = -(64 + 8)
    }
    return d;
  }
  // Word j of the vector -> the B fragments of mma steps 2j (lo) and 2j+1 (hi).
  __device__ __forceinline__ void word(uint32_t w, uint32_t (&lo)[2], uint32_t (&hi)[2]) const {
    const uint32_t kMask0 = 0x000F000Fu, kMask1 = 0x00F000F0u, kExp = 0x64006400u;
    const __half2 kSixteenth = u2h(0x2C002C00u);
    const uint32_t w8 = w >> 8;
    lo[0] = h2u(__hmul2(__hsub2(u2h(lop3_and_or(w, kMask0, kExp)), zl), s2));
    lo[1] = h2u(__hmul2(__hfma2(u2h(lop3_and_or(w, kMask1, kExp)), kSixteenth, zh), s2));
    hi[0] = h2u(__hmul2(__hsub2(u2h(lop3_and_or(w8, kMask0, kExp)), zl), s2));
    hi[1] = h2u(__hmul2(__hfma2(u2h(lop3_and_or(w8, kMask1, kExp)), kSixteenth, zh), s2));
  }
};

// One lane's 16-byte tile vector -> the B fragments of the tile's 8 mma steps (b[s][0..1]).
template <bool ASYM>
__device__ __forceinline__ void dequant(const uint4 wv, uint32_t sc, uint32_t zr, uint32_t (&b)[8][2]) {
  const StripDequant d = StripDequant::of<ASYM>(sc, zr);
  const uint32_t ws[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
  for (int j = 0; j < 4; j++) d.word(ws[j], b[2 * j], b[2 * j + 1]);
}

// NS strips (8 columns each) per block, kU = kRing / NS tiles of each in flight per warp.
// One word (j) of a lane's tile vector -> the B fragments of mma steps 2j, 2j+1 (used where
// registers are tight: 16 rows x 32 columns).
template <bool ASYM>
__device__ __forceinline__ void dequant_word(uint32_t w, uint32_t sc, uint32_t zr, uint32_t (&b)[2][2]) {
  StripDequant::of<ASYM>(sc, zr).word(w, b[0], b[1]);
}

__device__ __forceinline__ uint32_t word_of(const uint4 &v, int q) {
  return q == 0 ? v.x : (q == 1 ? v.y : (q == 2 ? v.z : v.w));
}

template <int MR, bool ASYM, int NS>
__global__ void __launch_bounds__(kThreads, 2) gemm_w4a16_strip_kernel(StripArgs p) {
  constexpr int kU = kRing / NS, kStrips = NS, kCols = NS * 8;
  __shared__ float red[kWarps][MR][kCols];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int col0 = blockIdx.y * kCols; // blockIdx.x: the 16-row chunk, fastest, so that the
  const int m0 = blockIdx.x * 16;       // chunks of one column group share its weights in L2
  const int rows = min(16, p.M - m0);
  const int ng = p.K / p.group;

  // Tiles of this warp: w, w + 8, ... (n_it of them).
  const int n_it = warp < p.ktiles ? (p.ktiles - warp + kWarps - 1) / kWarps : 0;
  const uint4 *wp0 = p.W + ((int64_t)(col0 / 8) * p.ktiles + warp) * 32 + lane;
  const int64_t sstride = (int64_t)p.ktiles * 32; // uint4s between strips
  const int64_t wstep = (int64_t)kWarps * 32; // uint4s between consecutive tiles of a warp
  const unsigned short *sp = p.scales + col0 + g;
  const unsigned short *zp = ASYM ? p.zeros + col0 + g : nullptr;
  auto group_of = [&](int it) { return min((((warp + it * kWarps) * kTileK) + 32 * t) / p.group, ng - 1); };

  uint4 ring[kU][kStrips];
  uint32_t rs[kU][kStrips], rz[kU][kStrips];
  auto issue = [&](int u, int j, int it) {
    ring[u][j] = ld_stream(wp0 + j * sstride + it * wstep);
    const int64_t gi = (int64_t)group_of(it) * p.N + 8 * j;
    rs[u][j] = __ldg(sp + gi);
    rz[u][j] = ASYM ? __ldg(zp + gi) : 0u;
  };
#pragma unroll
  for (int u = 0; u < kU; u++)
    if (u < n_it) {
#pragma unroll
      for (int j = 0; j < kStrips; j++) issue(u, j, u);
    }

  float acc[kStrips][4];
#pragma unroll
  for (int j = 0; j < kStrips; j++)
#pragma unroll
    for (int v = 0; v < 4; v++) acc[j][v] = 0.0f;

  const bool lo_ok = g < rows, hi_ok = MR == 16 && g + 8 < rows;
  const __half *alo = p.A + (int64_t)(m0 + (lo_ok ? g : 0)) * p.K + 32 * t;
  const __half *ahi = p.A + (int64_t)(m0 + (hi_ok ? g + 8 : 0)) * p.K + 32 * t;
  const uint4 zero4 = make_uint4(0, 0, 0, 0);

  for (int i0 = 0; i0 < n_it; i0 += kU) {
#pragma unroll
    for (int u = 0; u < kU; u++) {
      const int it = i0 + u;
      if (it < n_it) {
        const int k0 = (warp + it * kWarps) * kTileK; // + 32t: this lane's 32 inputs
        const bool kin = k0 + 32 * t < p.K;
        if (MR == 16 && NS == 4) {
          // Word by word (registers: 16 rows x 4 strips): A load q, then steps 2q, 2q+1 of
          // every strip; the ring slots are refilled after the tile.
#pragma unroll
          for (int q = 0; q < 4; q++) {
            const uint4 a = (lo_ok && kin) ? __ldg(reinterpret_cast<const uint4 *>(alo + k0 + 8 * q)) : zero4;
            const uint4 ah = (hi_ok && kin) ? __ldg(reinterpret_cast<const uint4 *>(ahi + k0 + 8 * q)) : zero4;
#pragma unroll
            for (int j = 0; j < kStrips; j++) {
              uint32_t b[2][2];
              dequant_word<ASYM>(word_of(ring[u][j], q), rs[u][j], rz[u][j], b);
              mma_f16(acc[j], a.x, ah.x, a.y, ah.y, b[0][0], b[0][1]);
              mma_f16(acc[j], a.z, ah.z, a.w, ah.w, b[1][0], b[1][1]);
            }
          }
#pragma unroll
          for (int j = 0; j < kStrips; j++)
            if (it + kU < n_it) issue(u, j, it + kU);
        } else {
          uint4 a[4], ah[4];
#pragma unroll
          for (int q = 0; q < 4; q++) {
            a[q] = (lo_ok && kin) ? __ldg(reinterpret_cast<const uint4 *>(alo + k0 + 8 * q)) : zero4;
            ah[q] = zero4;
            if (MR == 16) ah[q] = (hi_ok && kin) ? __ldg(reinterpret_cast<const uint4 *>(ahi + k0 + 8 * q)) : zero4;
          }
          // Strip by strip: dequantize, refill the ring slot with the tile kU ahead, 8 MMAs.
#pragma unroll
          for (int j = 0; j < kStrips; j++) {
            uint32_t b[8][2];
            dequant<ASYM>(ring[u][j], rs[u][j], rz[u][j], b);
            if (it + kU < n_it) issue(u, j, it + kU);
#pragma unroll
            for (int q = 0; q < 4; q++) {
              mma_f16(acc[j], a[q].x, ah[q].x, a[q].y, ah[q].y, b[2 * q][0], b[2 * q][1]);
              mma_f16(acc[j], a[q].z, ah[q].z, a[q].w, ah[q].w, b[2 * q + 1][0], b[2 * q + 1][1]);
            }
          }
        }
      }
    }
  }

  // Warp sums -> shared memory, added in warp order 0..7.
#pragma unroll
  for (int j = 0; j < kStrips; j++) {
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
    float v0 = 0.0f, v1 = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; w++) {
      v0 = __fadd_rn(v0, red[w][r][c]);
      v1 = __fadd_rn(v1, red[w][r][c + 1]);
    }
    if (p.bias != nullptr) {
      v0 = __fadd_rn(v0, p.bias[col]);
      v1 = __fadd_rn(v1, p.bias[col + 1]);
    }
    *reinterpret_cast<__half2 *>(p.out + (int64_t)(m0 + r) * p.N + col) =
        __halves2half2(__float2half_rn(v0), __float2half_rn(v1));
  }
}

template <int MR, bool ASYM>
int launch(const StripArgs &a, bool wide, cudaStream_t st, const char *op) {
  const unsigned chunks = (unsigned)((a.M + 15) / 16);
  if (wide)
    gemm_w4a16_strip_kernel<MR, ASYM, 4><<<dim3(chunks, a.N / 32), kThreads, 0, st>>>(a);
  else
    gemm_w4a16_strip_kernel<MR, ASYM, 2><<<dim3(chunks, a.N / 16), kThreads, 0, st>>>(a);
  return autoq_check_launch(op, "gemm_w4a16_strip_kernel");
}


} // namespace

extern "C" int autoq_gemm_w4a16_strip(int dev, const void *A_f16, const void *W_packed_strip, const void *scales_f16,
                                   const void *zeros_f16, const float *bias, void *out_f16, int64_t M, int64_t N,
                                   int64_t K, int64_t group, void *stream) {
  const char *op = "autoq_gemm_w4a16_strip";
  AUTOQ_TRY(w4a16_check_shape(op, M, N, K, group));
  if (N > 16 * 65535LL || K > (1LL << 30) || M > (1LL << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld too large (N <= 1048560, K and M <= 2^30)", op,
                           (long long)M, (long long)N, (long long)K);
  if (A_f16 == nullptr || W_packed_strip == nullptr || scales_f16 == nullptr || out_f16 == nullptr ||
      ((uintptr_t)A_f16 & 15) || ((uintptr_t)W_packed_strip & 15) || ((uintptr_t)scales_f16 & 1) ||
      ((uintptr_t)zeros_f16 & 1) || ((uintptr_t)out_f16 & 3))
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: A and W must be non-NULL 16-byte aligned device pointers, scales (and zeros) "
                           "2-byte aligned, out 4-byte aligned",
                           op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  StripArgs a{};
  a.A = (const __half *)A_f16, a.W = (const uint4 *)W_packed_strip;
  a.scales = (const unsigned short *)scales_f16, a.zeros = (const unsigned short *)zeros_f16;
  a.bias = bias, a.out = (__half *)out_f16;
  a.M = (int)M, a.N = (int)N, a.K = (int)K, a.group = (int)group;
  a.ktiles = (int)((K + kTileK - 1) / kTileK);
  // Every block reads all of A (M x K x 2 bytes) against 8*NS*K/2 bytes of weights: 4M/(8NS)
  // times the weight bytes, from L1 or L2. From M = 5 on, 32 columns per block halve that,
  // when N/32 blocks still give two per SM (qkv, gate_up); else 16 (o, down at N = 4096).
  const bool wide = M > 4 && N / 32 >= 2LL * gemm_sm_count(dev);
  cudaStream_t st = (cudaStream_t)stream;
  const bool asym = zeros_f16 != nullptr;
  if (M <= 8) return asym ? launch<8, true>(a, wide, st, op) : launch<8, false>(a, wide, st, op);
  return asym ? launch<16, true>(a, wide, st, op) : launch<16, false>(a, wide, st, op);
}
