// histogram_onepass.cu: the one-pass calibration histogram (autoq_histogram_onepass; "histogram
// v2" in H100 runs 3-6), one pass over F16/BF16 inputs instead of histogram_twopass.cu's two
// (absmax, then bins); same outputs, bit for bit.
//
// Why it is exact: calib's bin of a finite x depends only on |x| and on the tensor's
// exponent, and the exponent only on the largest finite |x|. A F16/BF16 |x| is one of 2^15
// bit patterns (the value without its sign bit), so a histogram over those 32768 patterns
// holds everything: the largest finite pattern with a non-zero count is the absmax, the
// patterns of Inf and NaN give their counts, and every pattern's count goes to the bin
// bin_index (histogram_bins.cuh) gives its float32 value. Integer sums commute: deterministic.
//
// Passes:
//   1. mag_hist_kernel, grid (P, tensors), 1024 threads, 128 KB of dynamic shared memory
//      (32768 uint32 counters: one block per SM): block p of tensor t counts the patterns of
//      its contiguous 1/P of the tensor (16-byte loads, 4 in flight per thread, one shared
//      atomic per value) and stores all 32768 counters to scratch[t][p] (plain stores: no
//      zeroing, no global atomics).
//   2. mag_finish_kernel, one 1024-thread block per tensor: sums the P partials per pattern
//      (L2-resident), finds absmax/NaN/Inf, then sums them again into the 2048 bins (64-bit
//      shared atomics) and writes stats[t] and counts[t][*] entirely (no memsets).
// P ~ SMs / tensors, so the whole launch is about one wave of blocks; each block's share
// stays under 2^32 values (uint32 counters).
//
// Prediction before any GPU run (H100 SXM, bench row "histogram 2^28 F16 activations (64
// tensors)", two-pass 0.68-0.69 ms): one read of 537 MB at 2.7 TB/s is 0.20 ms;
// the 2^28 shared atomics (~2M per SM, bank conflicts of random patterns ~2x) fit under it;
// pass 2 re-reads 16 MB of partials from L2, ~0.01-0.02 ms. So 0.21-0.30 ms for the one-pass
// row (54-76% of peak on one read, 2.3-3.2x faster than two passes). If it lands near 0.3 ms or
// above, the shared atomics are the limit (next: pair duplicates in a word, or warp
// aggregation with __match_any_sync for peaked data).
#include <algorithm>

#include "common.cuh"
#include "histogram_bins.cuh"

namespace {

constexpr int kMagBins = 1 << 15;
constexpr int kThreads = 1024;
constexpr int kUnroll = 4;

// One count of magnitude pattern pat. AGG (the "one-pass-warpagg" kernel, issue 18: the
// one-pass kernel is bound by shared-memory atomic conflicts): the active lanes that hold the
// same pattern are found with __match_any_sync and their lowest lane adds their number, so
// a warp whose 32 values share k patterns issues k atomics instead of 32 (activations cluster:
// zeros, padding, saturated values). Integer counts: the same totals either way.
template <bool AGG>
__device__ __forceinline__ void count_pat(uint32_t *bins, uint32_t pat) {
  if (!AGG) {
    atomicAdd(&bins[pat], 1u);
    return;
  }
  const unsigned peers = __match_any_sync(__activemask(), pat);
  if ((threadIdx.x & 31) == (unsigned)(__ffs(peers) - 1)) atomicAdd(&bins[pat], (uint32_t)__popc(peers));
}

template <bool AGG>
__device__ __forceinline__ void count_word(uint32_t *bins, uint32_t w) {
  count_pat<AGG>(bins, w & 0x7fffu);
  count_pat<AGG>(bins, (w >> 16) & 0x7fffu);
}

template <bool AGG>
__global__ void __launch_bounds__(kThreads, 1)
    mag_hist_kernel(const autoq_hist_input *__restrict__ inputs, int parts, uint32_t *__restrict__ scratch) {
  extern __shared__ uint4 smem4[];
  uint32_t *bins = (uint32_t *)smem4;
  for (int i = threadIdx.x; i < kMagBins / 4; i += kThreads) smem4[i] = make_uint4(0, 0, 0, 0);
  __syncthreads();
  const autoq_hist_input in = inputs[blockIdx.y];
  const uint16_t *data = (const uint16_t *)in.data;
  // Vectors of 8 values over the 16-byte aligned data; the rest scalar.
  const int64_t nvec = ((uintptr_t)in.data % 16 == 0) ? in.n / 8 : 0;
  const int64_t v0 = nvec * blockIdx.x / parts, v1 = nvec * (blockIdx.x + 1) / parts;
  const uint4 *vp = (const uint4 *)in.data;
  int64_t v = v0 + threadIdx.x;
  for (; v + (kUnroll - 1) * kThreads < v1; v += kUnroll * kThreads) {
    uint4 x[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) x[u] = __ldg(vp + v + u * kThreads);
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      count_word<AGG>(bins, x[u].x);
      count_word<AGG>(bins, x[u].y);
      count_word<AGG>(bins, x[u].z);
      count_word<AGG>(bins, x[u].w);
    }
  }
  for (; v < v1; v += kThreads) {
    const uint4 x = __ldg(vp + v);
    count_word<AGG>(bins, x.x);
    count_word<AGG>(bins, x.y);
    count_word<AGG>(bins, x.z);
    count_word<AGG>(bins, x.w);
  }
  const int64_t rest = in.n - nvec * 8;
  const int64_t s0 = nvec * 8 + rest * blockIdx.x / parts, s1 = nvec * 8 + rest * (blockIdx.x + 1) / parts;
  for (int64_t i = s0 + threadIdx.x; i < s1; i += kThreads) count_pat<AGG>(bins, data[i] & 0x7fffu);
  __syncthreads();
  uint4 *out = (uint4 *)(scratch + ((size_t)blockIdx.y * parts + blockIdx.x) * kMagBins);
  for (int i = threadIdx.x; i < kMagBins / 4; i += kThreads) out[i] = smem4[i];
}

// Float32 bits of the magnitude pattern m of a F16 or BF16 value.
__device__ __forceinline__ uint32_t mag_f32_bits(uint32_t m, int dtype) {
  return dtype == AUTOQ_F16 ? __float_as_uint(autoq_f16_to_f32((uint16_t)m)) : m << 16;
}

__device__ __forceinline__ uint64_t mag_sum(const uint32_t *__restrict__ part, int parts, int m) {
  uint64_t s = 0;
  for (int p = 0; p < parts; p++) s += part[(size_t)p * kMagBins + m];
  return s;
}

__global__ void __launch_bounds__(kThreads)
    mag_finish_kernel(const autoq_hist_input *__restrict__ inputs, int parts, const uint32_t *__restrict__ scratch,
                      autoq_hist_stats *__restrict__ stats, unsigned long long *__restrict__ counts) {
  __shared__ unsigned long long bins[AUTOQ_HIST_BINS];
  __shared__ uint32_t s_max;
  __shared__ unsigned long long s_nan, s_inf;
  const int t = blockIdx.x;
  const autoq_hist_input in = inputs[t];
  const uint32_t inf_pat = in.dtype == AUTOQ_F16 ? 0x7c00u : 0x7f80u; // > inf_pat: NaN
  const uint32_t *part = scratch + (size_t)t * parts * kMagBins;
  for (int i = threadIdx.x; i < AUTOQ_HIST_BINS; i += kThreads) bins[i] = 0;
  if (threadIdx.x == 0) {
    s_max = 0;
    s_nan = 0;
    s_inf = 0;
  }
  __syncthreads();
  uint32_t mx = 0;
  unsigned long long nan = 0, inf = 0;
  for (int m = threadIdx.x; m < kMagBins; m += kThreads) {
    const uint64_t c = mag_sum(part, parts, m);
    if (c == 0) continue;
    if ((uint32_t)m > inf_pat)
      nan += c;
    else if ((uint32_t)m == inf_pat)
      inf += c;
    else
      mx = max(mx, (uint32_t)m); // patterns order like magnitudes
  }
  for (int off = 16; off > 0; off >>= 1) {
    mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    nan += __shfl_xor_sync(0xffffffffu, nan, off);
    inf += __shfl_xor_sync(0xffffffffu, inf, off);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(&s_max, mx);
    if (nan) atomicAdd(&s_nan, nan);
    if (inf) atomicAdd(&s_inf, inf);
  }
  __syncthreads();
  const uint32_t absmax_bits = mag_f32_bits(s_max, in.dtype); // 0 when every finite value is 0
  const int has_exp = absmax_bits != 0;
  const int exp = has_exp ? exp_for_bits(absmax_bits) : 0;
  for (int m = threadIdx.x; m < (int)inf_pat; m += kThreads) {
    const uint64_t c = mag_sum(part, parts, m);
    if (c) atomicAdd(&bins[has_exp ? bin_index(mag_f32_bits(m, in.dtype), exp) : 0], (unsigned long long)c);
  }
  __syncthreads();
  unsigned long long *out = counts + (size_t)t * AUTOQ_HIST_BINS;
  for (int i = threadIdx.x; i < AUTOQ_HIST_BINS; i += kThreads) out[i] = bins[i];
  if (threadIdx.x == 0) {
    autoq_hist_stats s;
    s.absmax_bits = absmax_bits;
    s.exp = exp;
    s.has_exp = has_exp;
    s.pad = 0;
    s.nan = s_nan;
    s.inf = s_inf;
    s.count = (uint64_t)in.n - s_nan - s_inf;
    stats[t] = s;
  }
}

// Blocks per tensor: about one wave over the device, each block's share under 2^32 values,
// no more blocks than 64K values each would need.
int64_t parts_for(int sms, int ntensors, int64_t max_n) {
  int64_t p = std::max<int64_t>(1, sms / ntensors);
  p = std::min<int64_t>(p, std::max<int64_t>(1, (max_n + 65535) / 65536));
  const int64_t minp = max_n / ((int64_t)1 << 31) + 1;
  return std::max(p, minp);
}

} // namespace

// Bytes of scratch autoq_histogram_onepass needs for ntensors tensors of at most max_n values, or
// 0 when the device cannot run it (a block needs 128 KB of shared memory: sm_80 and sm_90
// have it, sm_86/sm_89 do not); -1 on error (message in the last error).
extern "C" int64_t autoq_histogram_onepass_scratch_bytes(int dev, int ntensors, int64_t max_n) {
  const char *op = "autoq_histogram_onepass_scratch_bytes";
  int optin = 0, sms = 0;
  cudaError_t e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e != cudaSuccess) return autoq_fail_cuda(e, op), -1;
  if (optin < kMagBins * 4 || ntensors <= 0) return 0;
  return parts_for(sms, ntensors, max_n) * ntensors * (int64_t)kMagBins * 4;
}

namespace {

template <bool AGG>
int onepass(const char *op, int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n, autoq_hist_stats *stats,
            uint64_t *counts, void *scratch, int64_t scratch_bytes, void *stream) {
  if (ntensors <= 0) return 0;
  if (ntensors > 65535)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %d tensors in one launch (at most 65535)", op, ntensors);
  if (!inputs || !stats || !counts || !scratch) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  int sms = 0;
  AUTOQ_CUDA(op, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t parts = parts_for(sms, ntensors, max_n);
  const int64_t need = parts * ntensors * (int64_t)kMagBins * 4;
  if (scratch_bytes < need)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: scratch of %lld bytes, need %lld", op, (long long)scratch_bytes,
                           (long long)need);
  if (parts > 0x7fffffffLL) return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: tensor of %lld values is too large", op, (long long)max_n);
  AUTOQ_CUDA(op, cudaFuncSetAttribute(mag_hist_kernel<AGG>, cudaFuncAttributeMaxDynamicSharedMemorySize, kMagBins * 4));
  cudaStream_t st = (cudaStream_t)stream;
  mag_hist_kernel<AGG><<<dim3((unsigned)parts, (unsigned)ntensors), kThreads, kMagBins * 4, st>>>(inputs, (int)parts,
                                                                                                (uint32_t *)scratch);
  AUTOQ_TRY(autoq_check_launch(op, "mag_hist_kernel"));
  mag_finish_kernel<<<ntensors, kThreads, 0, st>>>(inputs, (int)parts, (const uint32_t *)scratch, stats,
                                                   (unsigned long long *)counts);
  return autoq_check_launch(op, "mag_finish_kernel");
}

} // namespace

// Same contract as autoq_histogram_twopass (autoq.h) for inputs that are all F16 or BF16 (the Go
// caller checks; descriptors live on the device), plus scratch of
// autoq_histogram_onepass_scratch_bytes bytes. Writes every stats and counts entry.
extern "C" int autoq_histogram_onepass(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
                                       autoq_hist_stats *stats, uint64_t *counts, void *scratch, int64_t scratch_bytes,
                                       void *stream) {
  return onepass<false>("autoq_histogram_onepass", dev, inputs, ntensors, max_n, stats, counts, scratch, scratch_bytes,
                        stream);
}

// The same with warp-aggregated shared-memory updates (count_pat<true>); the same outputs.
extern "C" int autoq_histogram_onepass_warpagg(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
                                               autoq_hist_stats *stats, uint64_t *counts, void *scratch,
                                               int64_t scratch_bytes, void *stream) {
  return onepass<true>("autoq_histogram_onepass_warpagg", dev, inputs, ntensors, max_n, stats, counts, scratch,
                       scratch_bytes, stream);
}
