// histogram_twopass.cu: calibration histograms of |x| with calib's exact-merge bin rule, for many
// tensors per launch (F32/F16/BF16), bit for bit equal to calib.Histogram.AddF32/F16/BF16 on
// a fresh histogram of each tensor (the Go side then merges it with calib.Histogram.Merge,
// which is exact).
//
// Bin rule (calib/histogram.go): for a tensor whose largest finite |x| is absmax > 0,
// exp = floor(log2(absmax)) - 10 (read off the float bits, subnormals included) and a
// finite x goes to bin floor(|x| / 2^exp): with |x| = sig * 2^(e-150) (e the biased
// exponent, 1 for subnormals; sig with the hidden bit for normals) that is sig shifted by
// exp + 150 - e, an exact integer shift. When absmax is 0 every finite value is a zero and
// goes to bin 0. NaN and ±Inf are counted apart and never binned.
//
// Passes (one launch each, grid = (blocks per tensor, tensors)):
//   1. stats_kernel: max of the finite |x| bits (atomicMax on the bits: non-negative floats
//      order like their bits), NaN and Inf counts (64-bit atomicAdd). Exact, deterministic.
//   2. finalize_kernel: one thread per tensor: exp, has_exp, count = n - nan - inf.
//   3. bin_kernel: each block privatises the 2048 bins in shared memory as uint32 (a block
//      never sees 2^32 values), counts with shared atomics, then flushes its non-zero bins
//      with 64-bit integer atomicAdd into counts[t][*]. Integer addition commutes, so the
//      counts are deterministic.
// Loads: 16-byte vectors over the aligned prefix of each tensor (data 16-byte aligned),
// scalar loads for the tail; grid-stride within the tensor.
#include "common.cuh"
#include "histogram_bins.cuh"

namespace {

constexpr int kThreads = 256;

struct Elems {
  // Calls f(bits of |x| as a float32) for each of this thread's elements of tensor in.
  template <class F>
  __device__ static void for_each(const autoq_hist_input &in, F f) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int V = autoq_vec_elems(in.dtype);
    const int64_t nvec = ((uintptr_t)in.data % 16 == 0) ? in.n / V : 0;
    float x[8];
    if (in.dtype == AUTOQ_F32) {
      for (int64_t v = tid; v < nvec; v += stride) {
        autoq_load_vec<AUTOQ_F32>(in.data, v, x);
#pragma unroll
        for (int k = 0; k < 4; k++) f(__float_as_uint(x[k]) & 0x7fffffffu);
      }
    } else if (in.dtype == AUTOQ_F16) {
      for (int64_t v = tid; v < nvec; v += stride) {
        autoq_load_vec<AUTOQ_F16>(in.data, v, x);
#pragma unroll
        for (int k = 0; k < 8; k++) f(__float_as_uint(x[k]) & 0x7fffffffu);
      }
    } else {
      for (int64_t v = tid; v < nvec; v += stride) {
        autoq_load_vec<AUTOQ_BF16>(in.data, v, x);
#pragma unroll
        for (int k = 0; k < 8; k++) f(__float_as_uint(x[k]) & 0x7fffffffu);
      }
    }
    for (int64_t i = nvec * V + tid; i < in.n; i += stride) {
      float y = in.dtype == AUTOQ_F32   ? autoq_load1<AUTOQ_F32>(in.data, i)
                : in.dtype == AUTOQ_F16 ? autoq_load1<AUTOQ_F16>(in.data, i)
                                        : autoq_load1<AUTOQ_BF16>(in.data, i);
      f(__float_as_uint(y) & 0x7fffffffu);
    }
  }
};

__global__ void stats_kernel(const autoq_hist_input *__restrict__ inputs, autoq_hist_stats *__restrict__ stats) {
  const autoq_hist_input in = inputs[blockIdx.y];
  if ((int64_t)blockIdx.x * blockDim.x >= in.n) return;
  uint32_t mx = 0;
  unsigned long long nan = 0, inf = 0;
  Elems::for_each(in, [&](uint32_t u) {
    if (u > 0x7f800000u)
      nan++;
    else if (u == 0x7f800000u)
      inf++;
    else if (u > mx)
      mx = u;
  });
  for (int off = 16; off > 0; off >>= 1) {
    mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    nan += __shfl_xor_sync(0xffffffffu, nan, off);
    inf += __shfl_xor_sync(0xffffffffu, inf, off);
  }
  if ((threadIdx.x & 31) == 0) {
    autoq_hist_stats *s = stats + blockIdx.y;
    if (mx) atomicMax(&s->absmax_bits, mx);
    if (nan) atomicAdd((unsigned long long *)&s->nan, nan);
    if (inf) atomicAdd((unsigned long long *)&s->inf, inf);
  }
}

__global__ void finalize_kernel(const autoq_hist_input *__restrict__ inputs, autoq_hist_stats *__restrict__ stats,
                                int ntensors) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= ntensors) return;
  autoq_hist_stats *s = stats + t;
  s->has_exp = s->absmax_bits != 0;
  s->exp = s->has_exp ? exp_for_bits(s->absmax_bits) : 0;
  s->count = (uint64_t)inputs[t].n - s->nan - s->inf;
}

__global__ void bin_kernel(const autoq_hist_input *__restrict__ inputs, const autoq_hist_stats *__restrict__ stats,
                           unsigned long long *__restrict__ counts) {
  __shared__ uint32_t bins[AUTOQ_HIST_BINS];
  const autoq_hist_input in = inputs[blockIdx.y];
  if ((int64_t)blockIdx.x * blockDim.x >= in.n) return; // uniform per block: no barrier skipped
  for (int i = threadIdx.x; i < AUTOQ_HIST_BINS; i += blockDim.x) bins[i] = 0;
  __syncthreads();
  const int has_exp = stats[blockIdx.y].has_exp;
  const int exp = stats[blockIdx.y].exp;
  Elems::for_each(in, [&](uint32_t u) {
    if (u >= 0x7f800000u) return; // NaN, Inf: counted by stats_kernel
    atomicAdd(&bins[has_exp ? bin_index(u, exp) : 0], 1u);
  });
  __syncthreads();
  unsigned long long *out = counts + (int64_t)blockIdx.y * AUTOQ_HIST_BINS;
  for (int i = threadIdx.x; i < AUTOQ_HIST_BINS; i += blockDim.x)
    if (bins[i]) atomicAdd(out + i, (unsigned long long)bins[i]);
}

} // namespace

extern "C" int autoq_histogram_twopass(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
                               autoq_hist_stats *stats, uint64_t *counts, void *stream) {
  const char *op = "autoq_histogram_twopass";
  if (ntensors <= 0) return 0;
  if (ntensors > 65535)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %d tensors in one launch (at most 65535)", op, ntensors);
  if (!inputs || !stats || !counts) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cudaStream_t st = (cudaStream_t)stream;
  AUTOQ_CUDA(op, cudaMemsetAsync(stats, 0, (size_t)ntensors * sizeof(autoq_hist_stats), st));
  AUTOQ_CUDA(op, cudaMemsetAsync(counts, 0, (size_t)ntensors * AUTOQ_HIST_BINS * sizeof(uint64_t), st));
  int sms = 0;
  AUTOQ_CUDA(op, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  // About 8 blocks per SM over the whole launch (grid.y is the tensor), each thread with
  // at least 64 values: few enough blocks that flushing the privatised bins (up to 2048
  // global atomics per block) stays cheap, enough to fill the GPU.
  int64_t want = (max_n + (int64_t)kThreads * 64 - 1) / ((int64_t)kThreads * 64);
  int64_t cap = ((int64_t)sms * 8 + ntensors - 1) / ntensors;
  int64_t bx = want < 1 ? 1 : (want > cap ? cap : want);
  // Keep each block's share below 2^31 values (uint32 shared bins).
  int64_t minb = max_n / ((int64_t)1 << 31) + 1;
  if (bx < minb) bx = minb;
  if (bx > 0x7fffffffLL) return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: tensor of %lld values is too large", op, (long long)max_n);
  dim3 grid((unsigned)bx, (unsigned)ntensors);
  stats_kernel<<<grid, kThreads, 0, st>>>(inputs, stats);
  AUTOQ_TRY(autoq_check_launch(op, "stats_kernel"));
  finalize_kernel<<<(ntensors + 255) / 256, 256, 0, st>>>(inputs, stats, ntensors);
  AUTOQ_TRY(autoq_check_launch(op, "finalize_kernel"));
  bin_kernel<<<grid, kThreads, 0, st>>>(inputs, stats, (unsigned long long *)counts);
  return autoq_check_launch(op, "bin_kernel");
}
