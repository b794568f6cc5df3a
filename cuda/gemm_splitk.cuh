// gemm_splitk.cuh: the split-K machinery of the two tiled GEMMs (gemm_w4a16_tiled.cu, F32
// partials; gemm_w8a8.cu, int32 partials): the reduction argument and grid checks, how K is
// split, the workspace, the launch of the GEMM and of the deferred reduction, and that
// reduction kernel. The kernels keep their own partial stores and last-block reductions (those
// loops are part of each kernel's code).
#pragma once

#include <algorithm>

#include "gemm_common.cuh"

// ---- Device ----
// How partials of type T add: F32 with round-to-nearest in a fixed order (the same bits every
// run), int32 exactly (any order gives the same).
template <class T>
struct SplitKPartial;
template <>
struct SplitKPartial<float> {
  using Pair = float2;
  static __device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
};
template <>
struct SplitKPartial<int32_t> {
  using Pair = int2;
  static __device__ __forceinline__ int32_t add(int32_t a, int32_t b) { return a + b; }
};

// Deferred split-K reduction (AUTOQ_SPLITK_REDUCE_KERNEL): every column pair of out adds its
// `splits` partials (p.partials: [S, M, N] of T) in split order 0..S-1 from 0, as the GEMM's
// last-block reduction does (the same bits), but spread over the whole GPU instead of one block
// per tile, whose few threads serialise on L2 latency when a tile has many rows; Store()(p, row,
// col, s0, s1) is the GEMM's epilogue.
template <class Args, class T, class Store>
__global__ void splitk_reduce_kernel(Args p, int splits) {
  using P = SplitKPartial<T>;
  const int64_t pairs = (int64_t)p.M * p.N / 2;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < pairs; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t e = 2 * i;
    const int row = (int)(e / p.N), col = (int)(e % p.N);
    T s0 = 0, s1 = 0;
    for (int z = 0; z < splits; z++) {
      using Pair = typename P::Pair;
      const Pair v = __ldcg(reinterpret_cast<const Pair *>(p.partials + (int64_t)z * p.M * p.N + e));
      s0 = P::add(s0, v.x);
      s1 = P::add(s1, v.y);
    }
    Store()(p, row, col, s0, s1);
  }
}

// ---- Host ----
// The entry points' `reduce` argument (0, or the error set).
static inline int splitk_check_reduce(const char *op, int reduce) {
  if (reduce != AUTOQ_SPLITK_LAST_BLOCK && reduce != AUTOQ_SPLITK_REDUCE_KERNEL)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: split-K reduction %d (want AUTOQ_SPLITK_LAST_BLOCK or AUTOQ_SPLITK_REDUCE_KERNEL)", op,
                           reduce);
  return AUTOQ_OK;
}

// gridDim.y of gy row blocks (0, or the error set).
static inline int splitk_check_rows(const char *op, int64_t M, int gy) {
  if (gy > 65535)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: M=%lld needs %d row blocks, over the grid limit 65535", op,
                           (long long)M, gy);
  return AUTOQ_OK;
}

// How a call splits K, and the workspace that takes (counters, then partials; none unsplit).
struct SplitK {
  int splits;    // gridDim.z
  int per_split; // K steps per split
  size_t counter_bytes, partial_bytes;
  size_t workspace_bytes() const { return splits > 1 ? counter_bytes + partial_bytes : 0; }
};

// Splits `steps` K steps over `tiles` output tiles: when the tiles alone cannot fill the GPU
// (and the counters cover them), aim at two blocks per SM, keep >= 2 K steps per split and at
// most max_splits, and at most cap splits (what keeps the partials, split_bytes per split, no
// larger than the weights).
static inline SplitK splitk_plan(int dev, int64_t tiles, int steps, int64_t cap, int max_splits, size_t split_bytes) {
  const int sms = gemm_sm_count(dev);
  int s = 1;
  if (tiles < sms && tiles <= kMaxSplitTiles) {
    s = (int)((2 * sms + tiles - 1) / tiles);
    s = min(s, max(1, steps / 2));
    s = min(s, (int)max((int64_t)1, cap));
    s = min(s, max_splits);
  }
  SplitK k{};
  k.per_split = (steps + s - 1) / s;
  k.splits = (steps + k.per_split - 1) / k.per_split;
  if (k.splits > 1) {
    k.counter_bytes = kCounterBytes;
    k.partial_bytes = (size_t)k.splits * split_bytes;
  }
  return k;
}

// Hands a split call its workspace (a.counters, then a.partials) after checking it is there
// and large enough (size_fn: the entry point that sizes it); nothing for an unsplit call.
template <class Args>
static inline int splitk_use_workspace(const SplitK &k, Args &a, void *ws, size_t ws_bytes, int64_t M, int64_t N,
                                       int64_t K, const char *size_fn, const char *op) {
  if (k.splits <= 1) return AUTOQ_OK;
  const size_t need = k.counter_bytes + k.partial_bytes;
  if (ws == nullptr || ws_bytes < need)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: M=%lld N=%lld K=%lld splits K %d ways and needs a zeroed workspace of %zu bytes "
                           "(got %zu); size it with %s",
                           op, (long long)M, (long long)N, (long long)K, k.splits, need, ws_bytes, size_fn);
  a.counters = (int *)ws;
  a.partials = reinterpret_cast<decltype(a.partials)>((char *)ws + k.counter_bytes);
  return AUTOQ_OK;
}

// Launches the GEMM kern on grid (its dynamic shared memory raised once per device; configured:
// the kernel's own flags) and, when a defers the reduction, reduce over the whole GPU.
template <class Args, class Kern, class Reduce>
static inline int splitk_launch(int dev, bool (&configured)[64], Kern kern, Reduce reduce, const Args &a, dim3 grid,
                                int threads, int smem, cudaStream_t st, const char *kernel, const char *op) {
  if (dev >= 0 && dev < 64 && !configured[dev]) {
    AUTOQ_CUDA(op, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured[dev] = true;
  }
  kern<<<grid, threads, smem, st>>>(a);
  AUTOQ_TRY(autoq_check_launch(op, kernel));
  if (!a.defer_reduce || grid.z <= 1) return 0;
  const int64_t pairs = (int64_t)a.M * a.N / 2;
  const unsigned blocks = (unsigned)std::min<int64_t>((pairs + 255) / 256, 4096);
  reduce<<<blocks, 256, 0, st>>>(a, (int)grid.z);
  return autoq_check_launch(op, "splitk_reduce_kernel");
}
