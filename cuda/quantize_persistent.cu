// quantize_persistent.cu: the persistent weight quantization kernel (autoq_quantize with
// AUTOQ_QUANTIZE_PERSISTENT; "quantize v3" in H100 runs 3-6); same layout and the same bits
// as quantize.cu's kernels, for every width (instantiated for 8 and 4 bits, and once with the
// width at run time for 3, 5, 6 and 7 bits, whose chunks are stored byte by byte) (rint_div8 below is exact wherever it skips the division; see
// quantize.cu for the layout of w, q, scales and zeros).
//
// Why: the H100 runs put the earlier kernels at 41-61% of peak with ~6-7 us of fixed cost
// per call (time = a + bytes/rate fitted over 4096x4096 and 11008x4096: a = 5.6-7.1 us,
// marginal rate 2.0-2.3 TB/s). This kernel attacks both terms:
//   - persistent grid: exactly the blocks that fit at once (occupancy API, cached), each
//     with one contiguous, equal share of the flat 8-element chunks (no block waits for a
//     second wave, no 64-bit division);
//   - software pipelining: a thread issues the 16-byte loads of its next U chunks before it
//     quantizes the current U, so 2*U*16 bytes per thread are in flight while it computes;
//   - chunk -> (row, group) by precomputed multiply-shift division (32-bit);
//   - rint(x / scale) from x * RN(1/scale) with an exactness test, dividing only near ties
//     (rint_div8: ~6 instructions per element instead of a division's ~12 with MUFU and a
//     branch; the exact division reruns for the 8 values of a chunk that has a near-tie);
//   - non-finite detection on the raw 16-bit words (one mask-compare per element pair);
//   - no cudaMemsetAsync of the flag on the legacy default stream (stream == NULL, which
//     every Go caller uses and on which no two launches overlap): the blocks OR their flag
//     into a device global and the last block to finish writes *nonfinite and resets the
//     globals; on any other stream the flag is cleared by a memset first, as before.
//
// Predictions before any GPU run (H100 SXM, `autoq bench kernels`, bytes as that table counts
// them: F16 read once + levels written): the rows kernel fits t = 7.1 us + bytes / 2.3 TB/s;
// this one should cut the fixed term to ~5.5 us (no memset node) and raise the marginal rate to 2.7-2.9 TB/s
// (twice the loads in flight, about half the ALU instructions per element). So:
//   4096x4096  int8 sym 0.021-0.026 ms (58-71% of peak), int4 sym / asym g128 0.019-0.023 ms;
//   11008x4096 int8 sym 0.049-0.058 ms (70-82%), int4 sym / asym g128 0.042-0.050 ms (68-80%).
// A miss on the small shape only means fixed cost (launch + ramp) dominates; a marginal
// rate still ~2.3 TB/s on the large one would mean neither loads in flight nor ALU was
// the limit.
//
// Conditions (autoq_quantize_persistent_fits; else the dispatch takes the rows kernel): w
// 16-byte aligned, q 8-byte aligned, cols and group_cols multiples of 8, rows*cols/8 < 2^31.
#include <algorithm>

#include "common.cuh"
#include "quantize_chunk.cuh"

namespace {

struct PArgs {
  const float *scales;
  const int32_t *zeros;
  uint32_t nchunks, groups;
  FastDiv cpr, cpg; // chunks per row, chunks per group
  int per_tensor;
  int bits; // the width; the kernels instantiated for 4 and 8 bits use their constant
};

template <int DT, int BITS, bool SYM>
__device__ __forceinline__ void quantize_chunk(const PArgs &a, const Raw<DT> &r, uint32_t k, uint8_t *__restrict__ q) {
  uint32_t pi = 0;
  if (!a.per_tensor) {
    const uint32_t row = fdiv(k, a.cpr);
    pi = row * a.groups;
    if (a.groups != 1) pi += fdiv(k - row * a.cpr.d, a.cpg);
  }
  const float scale = __ldg(a.scales + pi);
  const int32_t zero = SYM ? 0 : __ldg(a.zeros + pi);
  float x[8], rq[8];
  chunk_values<DT>(r, x);
  rint_div8(x, scale, rq);
  const int bits = BITS ? BITS : a.bits;
  uint32_t v[8];
#pragma unroll
  for (int j = 0; j < 8; j++) v[j] = level_bits<SYM>(rq[j], zero, bits);
  // Rows hold cols*bits/8 bytes (cols a multiple of 8): chunk k starts at byte k*bits.
  autoq_store_chunk(q + (size_t)bits * k, autoq_pack8(v, bits), bits);
}

// Flag accumulation for launches on the legacy default stream (see the header).
__device__ int g_q3_bad;
__device__ unsigned int g_q3_done;

constexpr int kThreads = 256;

template <int DT>
constexpr int unroll() {
  return DT == AUTOQ_F32 ? 2 : 4;
}

template <int DT, int BITS, bool SYM>
__global__ void __launch_bounds__(kThreads) quantize_persistent_kernel(const void *__restrict__ w, PArgs a,
                                                               uint8_t *__restrict__ q, int32_t *__restrict__ nonfinite,
                                                               int self_clear) {
  constexpr int U = unroll<DT>();
  constexpr uint32_t step = kThreads * U;
  // This block's share [k0, k1) of the chunks, equal to within one chunk.
  const uint32_t k0 = (uint32_t)(((uint64_t)a.nchunks * blockIdx.x) / gridDim.x);
  const uint32_t k1 = (uint32_t)(((uint64_t)a.nchunks * (blockIdx.x + 1)) / gridDim.x);
  bool bad = false;
  Raw<DT> cur[U], nxt[U];
  uint32_t base = k0;
#pragma unroll
  for (int u = 0; u < U; u++) {
    const uint32_t k = base + u * kThreads + threadIdx.x;
    if (k < k1) load_chunk<DT>(w, k, cur[u]);
  }
  while (base < k1) {
    const uint32_t nb = base + step;
    // Next U chunks in flight while this thread quantizes the current ones.
#pragma unroll
    for (int u = 0; u < U; u++) {
      const uint32_t k = nb + u * kThreads + threadIdx.x;
      if (nb < k1 && k < k1) load_chunk<DT>(w, k, nxt[u]);
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const uint32_t k = base + u * kThreads + threadIdx.x;
      if (k < k1) {
        bad |= chunk_nonfinite<DT>(cur[u]);
        quantize_chunk<DT, BITS, SYM>(a, cur[u], k, q);
      }
    }
#pragma unroll
    for (int u = 0; u < U; u++) cur[u] = nxt[u];
    base = nb;
  }
  const int block_bad = __syncthreads_or(bad);
  if (!self_clear) {
    if (block_bad && threadIdx.x == 0) atomicOr(nonfinite, 1);
    return;
  }
  if (threadIdx.x == 0) {
    if (block_bad) atomicOr(&g_q3_bad, 1);
    __threadfence();
    if (atomicAdd(&g_q3_done, 1u) == gridDim.x - 1) { // last block: every flag is in
      __threadfence();
      *nonfinite = atomicExch(&g_q3_bad, 0);
      atomicExch(&g_q3_done, 0u);
    }
  }
}

// Resident blocks per SM of each instantiation, per device (the occupancy query is a host
// computation; cached because the benchmark launches at a few microseconds per call).
constexpr int kMaxDev = 64;
int g_occ[kMaxDev][3][6]; // [dev][dtype][bits (8, 4, other) x sym], 0: not queried

template <int DT, int BITS, bool SYM>
int launch_persistent(int dev, const void *w, const PArgs &a, uint8_t *q, int32_t *nonfinite, cudaStream_t st) {
  auto kern = quantize_persistent_kernel<DT, BITS, SYM>;
  const int di = DT == AUTOQ_F32 ? 0 : DT == AUTOQ_F16 ? 1 : 2, ki = (BITS == 8 ? 0 : BITS == 4 ? 2 : 4) + (SYM ? 0 : 1);
  int *occ = dev >= 0 && dev < kMaxDev ? &g_occ[dev][di][ki] : nullptr;
  int per_sm = occ ? *occ : 0;
  if (per_sm == 0) {
    AUTOQ_CUDA("autoq_quantize (persistent kernel occupancy)", cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, kThreads, 0));
    if (per_sm < 1) per_sm = 1;
    if (occ) *occ = per_sm;
  }
  int sms = 0;
  AUTOQ_CUDA("autoq_quantize", cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  constexpr int U = unroll<DT>();
  const int64_t want = ((int64_t)a.nchunks + kThreads * U - 1) / (kThreads * U);
  const unsigned grid = (unsigned)std::max<int64_t>(1, std::min<int64_t>(want, (int64_t)sms * per_sm));
  const int self_clear = st == nullptr;
  if (!self_clear) AUTOQ_CUDA("autoq_quantize", cudaMemsetAsync(nonfinite, 0, sizeof(int32_t), st));
  kern<<<grid, kThreads, 0, st>>>(w, a, q, nonfinite, self_clear);
  return autoq_check_launch("autoq_quantize", "quantize_persistent_kernel");
}

template <int DT>
int launch_dt(int dev, const void *w, const PArgs &a, int bits, int sym, uint8_t *q, int32_t *nonfinite,
               cudaStream_t st) {
  if (bits == 8) return sym ? launch_persistent<DT, 8, true>(dev, w, a, q, nonfinite, st) : launch_persistent<DT, 8, false>(dev, w, a, q, nonfinite, st);
  if (bits == 4) return sym ? launch_persistent<DT, 4, true>(dev, w, a, q, nonfinite, st) : launch_persistent<DT, 4, false>(dev, w, a, q, nonfinite, st);
  // 3, 5, 6, 7 bits: one instantiation with the width at run time (BITS = 0).
  return sym ? launch_persistent<DT, 0, true>(dev, w, a, q, nonfinite, st) : launch_persistent<DT, 0, false>(dev, w, a, q, nonfinite, st);
}

} // namespace

// Whether this kernel can quantize the call (AUTOQ_QUANTIZE_PERSISTENT in autoq_quantize_fits).
extern "C" int autoq_quantize_persistent_fits(const void *w, int64_t rows, int64_t cols, int64_t group_cols, const uint8_t *q) {
  if ((uintptr_t)w % 16 != 0 || (uintptr_t)q % 8 != 0 || cols % 8 != 0 || group_cols % 8 != 0) return 0;
  const int64_t nchunks = rows * cols / 8;
  return nchunks > 0 && nchunks < (1LL << 31);
}

// Called by autoq_quantize (quantize.cu) for AUTOQ_QUANTIZE_PERSISTENT after the fit check; the
// caller has validated the arguments and made dev current. Clears and sets *nonfinite.
extern "C" int autoq_quantize_persistent(int dev, const void *w, int dtype, int64_t rows, int64_t cols, int64_t group_cols,
                                         int per_tensor, int bits, int symmetric, const float *scales, const int32_t *zeros,
                                         uint8_t *q, int32_t *nonfinite, void *stream) {
  const int64_t nchunks = rows * cols / 8;
  PArgs a;
  a.scales = scales;
  a.zeros = zeros;
  a.nchunks = (uint32_t)nchunks;
  a.groups = (uint32_t)(cols / group_cols);
  a.cpr = make_fastdiv((uint32_t)(cols / 8));
  a.cpg = make_fastdiv((uint32_t)(group_cols / 8));
  a.per_tensor = per_tensor;
  a.bits = bits;
  cudaStream_t st = (cudaStream_t)stream;
  switch (dtype) {
  case AUTOQ_F32: return launch_dt<AUTOQ_F32>(dev, w, a, bits, symmetric, q, nonfinite, st);
  case AUTOQ_F16: return launch_dt<AUTOQ_F16>(dev, w, a, bits, symmetric, q, nonfinite, st);
  }
  return launch_dt<AUTOQ_BF16>(dev, w, a, bits, symmetric, q, nonfinite, st);
}
