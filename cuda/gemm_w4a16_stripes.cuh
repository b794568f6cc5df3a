// gemm_w4a16_stripes.cuh: what the persistent W4A16 kernels share (gemm_w4a16_swapped.cu for
// M <= 16, gemm_w4a16_mma.cu for M = 17..256; both read the tiled layout of
// gemm_w4a16_tiled.cu, so one packed weight serves every W4A16 kernel): the stripe partition,
// the fragment maps, the dequantization of one packed word, the evict-first cp.async and the
// end-of-segment reduction. The partition, the fit rule and the fragment maps are
// __host__ __device__ so that cgo/hostcheck_w4a16_test.go can compile them with g++ and run a
// warp emulator over them against quant.GemmW4A16 (the dequantization too, with F16 shims).
//
// ---- Stripe partition (Marlin's idea, with a deterministic reduction) ----
// The output is cut into tiles (the swapped kernel: one 64-column strip; the mma kernel: 64
// rows x 256 columns); each tile's K is cut into KS chunks. Unit u = T*KS + ks is chunk ks of
// tile T; units are numbered tile-major. A persistent grid of P <= U blocks gives block b the
// contiguous units [b*U/P, (b+1)*U/P): every block streams the same number of weight bytes to
// within one unit, whatever the shape, and a block's range crosses tile boundaries freely.
// A tile whose units belong to one block is written directly. Otherwise each of its owners
// (blocks first..last, consecutive, each owning a contiguous run of its chunks: a "segment")
// writes its F32 partial sums to slot 0 (the tile of the block's first unit) or slot 1 (its
// last tile) of its workspace pair, counts itself in at the tile's counter, and the last to
// arrive adds the partials in owner order first..last from 0.0f: the same bits whichever block
// arrives last. A block has at most two partial segments (its first and its last tile; tiles in
// between are whole), hence two slots. P <= U keeps every block non-empty, which the owner
// arithmetic needs.
#pragma once

#include "common.cuh"
#include "gemm_common.cuh"

#ifndef AUTOQ_HD
#define AUTOQ_HD __host__ __device__ __forceinline__
#endif

// 32-bit arithmetic throughout (64-bit division is a long subroutine on the GPU): callers keep
// U * (P + 1) < 2^31 (w4_stripes_fit bounds the units, P is at most a few hundred).
// First unit of block b.
AUTOQ_HD int stripe_begin(int b, int P, int U) { return b * U / P; }
// The block that owns unit u: the largest b with stripe_begin(b) <= u.
AUTOQ_HD int stripe_owner(int u, int P, int U) { return ((u + 1) * P - 1) / U; }
// Workspace slot of block b's segment of tile T: 0 when T is the tile of b's first unit.
AUTOQ_HD int stripe_slot(int b, int T, int KS, int P, int U) { return stripe_begin(b, P, U) / KS == T ? 0 : 1; }

// ---- Kernel geometry and the fit rule (mirrored by cgo.W4A16Fits, host-checked) ----
enum { kW4Swapped = 1, kW4MMA = 2 };
// K per unit: the swapped kernel 256 (16 k16 tiles, 8 KB of a 64-column strip), the mma kernel
// 64 (4 k16 tiles of each of 4 strips, 8 KB).
AUTOQ_HD int w4_unit_k(int kernel) { return kernel == kW4Swapped ? 256 : 64; }
// The static group size the kernel is instantiated for: the group itself when a unit holds
// several (32 .. unit/2, dividing it), 0 ("one group per unit", its index read at run time
// once per unit) when the group is the unit or a multiple of it, -1 when the kernel cannot
// take it.
AUTOQ_HD int w4_static_group(int kernel, int64_t group) {
  const int uk = w4_unit_k(kernel);
  if (group >= 32 && group % 32 == 0 && group < uk && uk % group == 0) return (int)group;
  if (group >= uk && group % uk == 0) return 0;
  return -1;
}
// Output tiles of a call (the counters' index range).
AUTOQ_HD int64_t w4_tiles(int kernel, int64_t M, int64_t N) {
  if (kernel == kW4Swapped) return N / 64;
  const int64_t bm = M <= 32 ? 32 : 64;
  return ((M + bm - 1) / bm) * ((N + 255) / 256);
}
// Units of a call.
AUTOQ_HD int64_t w4_units(int kernel, int64_t M, int64_t N, int64_t K) {
  return w4_tiles(kernel, M, N) * (K / w4_unit_k(kernel));
}
// 1 when the kernel takes (M, N, K, group): the tiled layout's N, K % 64, K a multiple of the
// unit, a group it is instantiated for, M <= 16 for the swapped kernel, at most 4096 tiles
// (the workspace's counters) and 2^20 units (the partition's 32-bit arithmetic with up to
// 2047 blocks).
AUTOQ_HD int w4_stripes_fit(int kernel, int64_t M, int64_t N, int64_t K, int64_t group) {
  if (kernel != kW4Swapped && kernel != kW4MMA) return 0;
  if (M < 1 || N < 64 || K < 64 || N % 64 != 0 || K % w4_unit_k(kernel) != 0) return 0;
  if (K % group != 0 || w4_static_group(kernel, group) < 0) return 0;
  if (kernel == kW4Swapped && M > 16) return 0;
  if (M > (1LL << 30) || N > (1LL << 30) || K > (1LL << 30)) return 0;
  return w4_tiles(kernel, M, N) <= 4096 && w4_units(kernel, M, N, K) <= (1 << 20);
}

// ---- Fragment maps (lane = 4g + t) ----
// The tiled layout gives lane (g, t) of a 64n x 16k tile four words; word j dequantizes to
// r[0] = b0 and r[1] = b1 of n-tile 2j, r[2] = b0 and r[3] = b1 of n-tile 2j+1 (b0: k 2t, 2t+1;
// b1: k 8+2t, 9+2t; column g of the n-tile). As the B operand (mma kernel) those are the
// fragments as they are. As the A operand of m16n8k16 (swapped kernel: 16 output columns as
// the m rows, tokens as n), a0 = (row g, k 2t..), a1 = (row g+8, k 2t..), a2 = (row g, k 8+2t..),
// a3 = (row g+8, k 8+2t..) with rows 0-7 = n-tile 2j and rows 8-15 = n-tile 2j+1:
// {r[0], r[2], r[1], r[3]}. The same bytes feed both orientations.
// Fragment register q (0..3) of word j, lane (g, t): the (n within the 64-column strip, k within
// the 16-input tile) of its first F16 value; the second is at k + 1 (the dequantize kernel's
// store map).
AUTOQ_HD void w4_word_coords(int lane, int j, int q, int &n, int &k) {
  n = 16 * j + 8 * (q >> 1) + (lane >> 2);
  k = 8 * (q & 1) + 2 * (lane & 3);
}
AUTOQ_HD void w4_swapped_afrag(const uint32_t (&r)[4], uint32_t (&a)[4]) {
  a[0] = r[0], a[1] = r[2], a[2] = r[1], a[3] = r[3];
}
// Byte offset of 16-byte chunk c (0..31) of token row r in the swapped kernel's activation
// tile (512-byte rows: 256 inputs): chunks are XOR-swizzled inside each 128-byte quarter so
// that the 8 rows one ldmatrix phase reads hit 8 bank groups.
AUTOQ_HD uint32_t w4_swz512(int r, int c) { return (uint32_t)(r * 512 + (((c & ~7) | ((c ^ r) & 7)) << 4)); }
// The row and chunk whose address lane gives ldmatrix for k16 tile tl of a unit (swapped
// kernel, MT8 token tiles of 8): .x4 with MT8 = 2 returns b0, b1 of tokens 0-7, then b0, b1
// of tokens 8-15; .x2 with MT8 = 1 returns b0, b1 (lanes 16-31 give lanes 0-15's addresses).
AUTOQ_HD void w4_swapped_ldm(int lane, int tl, int mt8, int &row, int &chunk) {
  row = (lane & 7) + (mt8 == 2 ? 8 * (lane >> 4) : 0);
  chunk = 2 * tl + ((lane >> 3) & 1);
}
// Accumulator e (0..3) of m16 sub-tile jw and token tile n8, lane (g, t), of the swapped
// kernel: output column (within the 64-column strip) and token.
AUTOQ_HD void w4_swapped_cfrag(int lane, int jw, int n8, int e, int &col, int &tok) {
  col = 16 * jw + 8 * (e >> 1) + (lane >> 2);
  tok = 8 * n8 + 2 * (lane & 3) + (e & 1);
}
// Accumulator e of m16 tile i and n-tile j, lane (g, t), of the mma kernel (activations as A):
// row within the block's rows, column within the warp's 64-column strip.
AUTOQ_HD void w4_mma_cfrag(int lane, int i, int j, int e, int &row, int &col) {
  row = 16 * i + (lane >> 2) + 8 * (e >> 1);
  col = 8 * j + 2 * (lane & 3) + (e & 1);
}

// ---- Dequantization of one packed word (the tiled kernel's arithmetic, bit for bit) ----
// w: word j of a lane's tile vector; sc, zr: the F16 pairs (n-tile 2j low half, 2j+1 high)
// of the lane's scale (and zero) vector. r as described above: f16(f16(u - z) * scale).
template <bool ASYM>
__device__ __forceinline__ void w4_dequant_word(uint32_t w, uint32_t sc, uint32_t zr, uint32_t (&r)[4]) {
  const uint32_t kMask0 = 0x000F000Fu, kMask1 = 0x00F000F0u, kExp = 0x64006400u;
  const __half2 kSixteenth = u2h(0x2C002C00u);
  const __half2 s_pair = u2h(sc);
  const __half2 s_lo = __low2half2(s_pair), s_hi = __high2half2(s_pair);
  __half2 zl_lo, zh_lo, zl_hi, zh_hi;
  w4_zero_terms<ASYM>(zr, zl_lo, zh_lo, zl_hi, zh_hi);
  const uint32_t w8 = w >> 8;
  r[0] = h2u(__hmul2(__hsub2(u2h(lop3_and_or(w, kMask0, kExp)), zl_lo), s_lo));
  r[1] = h2u(__hmul2(__hfma2(u2h(lop3_and_or(w, kMask1, kExp)), kSixteenth, zh_lo), s_lo));
  r[2] = h2u(__hmul2(__hsub2(u2h(lop3_and_or(w8, kMask0, kExp)), zl_hi), s_hi));
  r[3] = h2u(__hmul2(__hfma2(u2h(lop3_and_or(w8, kMask1, kExp)), kSixteenth, zh_hi), s_hi));
}

// ---- Device-only pieces ----
// An L2 policy that marks lines for early eviction (the weights are read once).
static __device__ __forceinline__ uint64_t w4_evict_first_policy() {
  uint64_t pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  return pol;
}
static __device__ __forceinline__ void cp_async16_hint(uint32_t dst, const void *src, uint64_t pol) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "l"(pol));
}
static __device__ __forceinline__ void ldmatrix_x2(uint32_t addr, uint32_t &r0, uint32_t &r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(addr));
}

// The partition and workspace of one call, as the kernels see it.
struct StripeCtx {
  int U, KS;     // units, chunks per tile
  int P;         // blocks (gridDim.x)
  int *counters; // [tiles], zero between calls
  float *partials; // [P][2][NV * nthr]
};

// Ends block blockIdx.x's segment of tile T. Threads tid < nthr hold NV accumulators each
// (holds); every thread of the block must call this (it has barriers). store(acc) writes the
// calling thread's finished accumulators.
template <int NV, class Store>
static __device__ __forceinline__ void stripe_finish(const StripeCtx &s, int T, float (&acc)[NV], bool holds,
                                                     int tid, int nthr, Store store) {
  const int first = stripe_owner(T * s.KS, s.P, s.U), last = stripe_owner((T + 1) * s.KS - 1, s.P, s.U);
  if (first == last) {
    if (holds) store(acc);
    return;
  }
  const int b = blockIdx.x;
  if (holds) {
    float *dst = s.partials + (size_t)(2 * b + stripe_slot(b, T, s.KS, s.P, s.U)) * NV * nthr;
#pragma unroll
    for (int v = 0; v < NV; v++) dst[v * nthr + tid] = acc[v];
  }
  if (!splitk_last_block(s.counters + T, (int)(last - first + 1)) || !holds) return;
  // In chunks of 32 accumulators, so that the loads in flight (32 per owner) do not need a
  // second set of NV registers; each chunk adds the owners in order first..last from 0.0f.
  constexpr int CH = NV < 32 ? NV : 32;
#pragma unroll
  for (int c0 = 0; c0 < NV; c0 += CH) {
#pragma unroll
    for (int v = 0; v < CH; v++) acc[c0 + v] = 0.0f;
    for (int o = first; o <= last; o++) {
      const float *src = s.partials + (size_t)(2 * o + stripe_slot(o, T, s.KS, s.P, s.U)) * NV * nthr;
#pragma unroll
      for (int v = 0; v < CH; v++) acc[c0 + v] = __fadd_rn(acc[c0 + v], __ldcg(src + (c0 + v) * nthr + tid));
    }
  }
  store(acc);
}

// Persistent grid: at most min(resident, cap) blocks per SM, at most U blocks.
template <class Kern>
static inline int w4_persistent_blocks(int dev, Kern kern, int threads, int smem, int cap, int U, int *cache) {
  if (*cache == 0) {
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, threads, smem) != cudaSuccess || per_sm < 1)
      per_sm = 1;
    *cache = per_sm;
  }
  int want = gemm_sm_count(dev) * (*cache < cap ? *cache : cap);
  if (want > 2047) want = 2047;
  return want < U ? want : U;
}

// The checks of a stripes kernel's entry point (0, or the error set), then dev made current;
// needs: what the kernel needs of a call, for the message when w4_stripes_fit refuses it.
static inline int w4_stripes_check(int kernel, const char *op, const char *needs, int dev, int64_t M, int64_t N,
                                   int64_t K, int64_t group, const void *A_f16, const void *W_packed,
                                   const void *scales_f16, const void *zeros_f16, const void *out_f16) {
  AUTOQ_TRY(w4a16_check_shape(op, M, N, K, group));
  if (!w4_stripes_fit(kernel, M, N, K, group))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: M=%lld N=%lld K=%lld group %lld: %s (see autoq_gemm_w4a16_fits)", op,
                           (long long)M, (long long)N, (long long)K, (long long)group, needs);
  AUTOQ_TRY(w4a16_check_pointers(op, A_f16, W_packed, scales_f16, zeros_f16, out_f16));
  return autoq_use_device(dev, op);
}

// Launches the stripes kernel Kern on a (a.s.U and a.s.KS set): raises its dynamic shared
// memory once per device, sizes the persistent grid (at most cap blocks per SM), checks the
// workspace (the counters, then two partial slots of slot_floats per block; ws_fn sizes it)
// and hands it out.
template <auto Kern, class Args>
static inline int w4_stripes_launch(int dev, Args a, int threads, int smem, int cap, int slot_floats, void *ws,
                                    size_t ws_bytes, cudaStream_t st, const char *ws_fn, const char *kernel,
                                    const char *op) {
  static int configured[64], occ[64];
  if (dev < 0 || dev >= 64) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: device %d out of range", op, dev);
  if (!configured[dev]) {
    AUTOQ_CUDA(op, cudaFuncSetAttribute(Kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured[dev] = 1;
  }
  a.s.P = w4_persistent_blocks(dev, Kern, threads, smem, cap, a.s.U, &occ[dev]);
  const size_t need = kCounterBytes + (size_t)a.s.P * 2 * slot_floats * sizeof(float);
  if (ws == nullptr || ws_bytes < need)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: needs a zeroed workspace of %zu bytes (got %zu); size it with %s",
                           op, need, ws_bytes, ws_fn);
  a.s.counters = (int *)ws;
  a.s.partials = (float *)((char *)ws + kCounterBytes);
  Kern<<<a.s.P, threads, smem, st>>>(a);
  return autoq_check_launch(op, kernel);
}
