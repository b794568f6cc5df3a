// bench_helpers.cu: device-side helpers of the benchmarks (autoq_gemm.h): a deterministic
// random fill, so that benchmark inputs (up to 70B-sized weights) and synthetic model weights
// are built without host work or copies, and a spin kernel that holds the stream while timed
// launches are queued.
#include "autoq_gemm.h"
#include "common.cuh"

namespace {

// splitmix64: a counter-based generator, so element i's value depends only on (seed, i).
__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__device__ __forceinline__ float unit(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); } // [0,1)

__global__ void fill_kernel(void *ptr, int64_t n, int kind, float amp, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t r = mix64(seed * 0x100000001B3ull + (uint64_t)i);
    switch (kind) {
    case 0: ((uint8_t *)ptr)[i] = (uint8_t)(r >> 32); break;
    case 1: ((__half *)ptr)[i] = __float2half_rn((2.0f * unit(r) - 1.0f) * amp); break;
    case 2: ((float *)ptr)[i] = amp * (0.125f + 0.875f * unit(r)); break;
    case 3: ((__half *)ptr)[i] = __float2half_rn(amp * (0.125f + 0.875f * unit(r))); break;
    default: ((__half *)ptr)[i] = __float2half_rn((float)((r >> 32) & 15)); break;
    }
  }
}

// One thread waits until the global nanosecond timer has advanced by ns: queued behind it,
// the benchmark's launches reach the GPU before it is free, so the timed calls run back to
// back and the events measure the kernels, not the host's launch latency.
__global__ void spin_kernel(int64_t ns) {
  uint64_t t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while ((int64_t)(t - t0) < ns);
}

} // namespace

extern "C" int autoq_gemm_spin(int dev, int64_t ns, void *stream) {
  const char *op = "autoq_gemm_spin";
  if (ns < 0 || ns > 1000000000LL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %lld ns outside [0, 1 s]", op, (long long)ns);
  AUTOQ_TRY(autoq_use_device(dev, op));
  spin_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(ns);
  return autoq_check_launch(op, "spin_kernel");
}

extern "C" int autoq_gemm_fill_random(int dev, void *ptr, int64_t n, int kind, float amp, uint64_t seed,
                                      void *stream) {
  const char *op = "autoq_gemm_fill_random";
  if (ptr == nullptr || n < 0 || kind < 0 || kind > 4)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad arguments (ptr %p, n %lld, kind %d)", op, ptr, (long long)n,
                           kind);
  if (n == 0) return 0;
  AUTOQ_TRY(autoq_use_device(dev, op));
  int64_t blocks = (n + 255) / 256;
  if (blocks > 8192) blocks = 8192;
  fill_kernel<<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(ptr, n, kind, amp, seed);
  return autoq_check_launch(op, "fill_kernel");
}
