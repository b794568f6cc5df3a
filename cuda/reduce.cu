// reduce.cu: per-group min/max of weight matrices, the scale/zero-point computation of
// quant.Scheme.ComputeParams, and per-channel absmax of activations.
//
// Layout: w is [rows, cols] row-major (F32, F16 or BF16); a group is group_cols consecutive
// columns of one row; outputs are [rows, groups] row-major (groups = cols / group_cols).
//
// Thread mapping:
//   group_ranges_kernel: one warp per group, 8 warps (8 groups) per block. Lanes stride over
//     the group's elements, 16-byte vector loads when the group is vector-aligned
//     (group_cols and cols multiples of 4 (F32) or 8 (F16/BF16) and w 16-byte aligned),
//     then a shuffle reduction. min/max is order independent, so the result equals the CPU
//     reference's (up to the sign of a zero, which no scale depends on).
//   per-tensor: the per-row ranges are reduced by one block (ranges_rows_to_one_kernel).
//   compute_params_kernel: one thread per group.
//   channel_absmax_kernel: one thread per column, blocks along rows in chunks (grid.y);
//     partial maxima are combined with atomicMax on the float bits (|x| >= 0 orders like its
//     bits), which is exact and deterministic.
#include "common.cuh"

namespace {

constexpr int kWarpsPerBlock = 8;

template <int DT, bool VEC>
__global__ void group_ranges_kernel(const void *__restrict__ w, int64_t rows, int64_t cols, int64_t group_cols,
                                    float *__restrict__ lo, float *__restrict__ hi, int32_t *__restrict__ bad) {
  const int lane = threadIdx.x & 31;
  const int64_t groups = cols / group_cols;
  const int64_t ngroups = rows * groups;
  const int64_t g = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (g >= ngroups) return;
  const int64_t r = g / groups, gc = g % groups;
  const int64_t base = r * cols + gc * group_cols;
  float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
  int nonfinite = 0;
  if (VEC) {
    constexpr int V = autoq_vec_elems(DT);
    const int64_t nv = group_cols / V, vbase = base / V;
#pragma unroll 4
    for (int64_t i = lane; i < nv; i += 32) {
      float x[V];
      autoq_load_vec<DT>(w, vbase + i, x);
#pragma unroll
      for (int k = 0; k < V; k++) {
        if (!autoq_is_finite_bits(x[k])) {
          nonfinite = 1;
        } else {
          mn = fminf(mn, x[k]);
          mx = fmaxf(mx, x[k]);
        }
      }
    }
  } else {
    for (int64_t i = lane; i < group_cols; i += 32) {
      float x = autoq_load1<DT>(w, base + i);
      if (!autoq_is_finite_bits(x)) {
        nonfinite = 1;
      } else {
        mn = fminf(mn, x);
        mx = fmaxf(mx, x);
      }
    }
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    nonfinite |= __shfl_xor_sync(0xffffffffu, nonfinite, off);
  }
  if (lane == 0) {
    lo[g] = mn;
    hi[g] = mx;
    bad[g] = nonfinite;
  }
}

// Reduces n per-row ranges into entry 0 (in place). One block.
__global__ void ranges_rows_to_one_kernel(int64_t n, float *lo, float *hi, int32_t *bad) {
  __shared__ float smn[256], smx[256];
  __shared__ int sbad[256];
  float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
  int b = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    mn = fminf(mn, lo[i]);
    mx = fmaxf(mx, hi[i]);
    b |= bad[i];
  }
  smn[threadIdx.x] = mn;
  smx[threadIdx.x] = mx;
  sbad[threadIdx.x] = b;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) {
      smn[threadIdx.x] = fminf(smn[threadIdx.x], smn[threadIdx.x + s]);
      smx[threadIdx.x] = fmaxf(smx[threadIdx.x], smx[threadIdx.x + s]);
      sbad[threadIdx.x] |= sbad[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    lo[0] = smn[0];
    hi[0] = smx[0];
    bad[0] = sbad[0];
  }
}

__global__ void compute_params_kernel(const float *__restrict__ lo, const float *__restrict__ hi, int64_t n, int bits,
                                      int sym, float *__restrict__ scales, int32_t *__restrict__ zeros) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float s;
  int32_t z;
  autoq_compute_params_dev(lo[i], hi[i], bits, sym, &s, &z);
  scales[i] = s;
  if (zeros) zeros[i] = z;
}

template <int DT>
__global__ void channel_absmax_kernel(const void *__restrict__ x, int64_t rows, int64_t cols, int64_t rows_per_block,
                                      float *__restrict__ absmax, unsigned long long *__restrict__ nonfinite) {
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t r0 = (int64_t)blockIdx.y * rows_per_block;
  const int64_t r1 = min(rows, r0 + rows_per_block);
  unsigned int m = 0;
  unsigned long long bad = 0;
  if (c < cols) {
    for (int64_t r = r0; r < r1; r++) {
      unsigned int u = __float_as_uint(autoq_load1<DT>(x, r * cols + c)) & 0x7fffffffu;
      if (u >= 0x7f800000u)
        bad++;
      else if (u > m)
        m = u;
    }
    atomicMax((unsigned int *)absmax + c, m);
  }
  // Count non-finite values once per warp.
  for (int off = 16; off > 0; off >>= 1) bad += __shfl_xor_sync(0xffffffffu, bad, off);
  if ((threadIdx.x & 31) == 0 && bad) atomicAdd(nonfinite, bad);
}

int check_matrix(const char *op, const void *w, int dtype, int64_t rows, int64_t cols, int64_t group_cols,
                 int per_tensor) {
  if (!w) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null weight pointer", op);
  if (dtype != AUTOQ_F32 && dtype != AUTOQ_F16 && dtype != AUTOQ_BF16)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: dtype %d is not F32, F16 or BF16", op, dtype);
  if (rows <= 0 || cols <= 0 || group_cols <= 0 || cols % group_cols != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad shape rows=%lld cols=%lld group_cols=%lld", op,
                           (long long)rows, (long long)cols, (long long)group_cols);
  if (per_tensor && group_cols != cols)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: per-tensor needs group_cols == cols (%lld != %lld)", op,
                           (long long)group_cols, (long long)cols);
  return 0;
}

template <int DT>
void launch_ranges(const void *w, int64_t rows, int64_t cols, int64_t gcols, float *lo, float *hi, int32_t *bad,
                   cudaStream_t st) {
  const int64_t ngroups = rows * (cols / gcols);
  const unsigned blocks = (unsigned)((ngroups + kWarpsPerBlock - 1) / kWarpsPerBlock);
  constexpr int V = autoq_vec_elems(DT);
  const bool vec = ((uintptr_t)w % 16 == 0) && gcols % V == 0 && cols % V == 0;
  if (vec)
    group_ranges_kernel<DT, true><<<blocks, 32 * kWarpsPerBlock, 0, st>>>(w, rows, cols, gcols, lo, hi, bad);
  else
    group_ranges_kernel<DT, false><<<blocks, 32 * kWarpsPerBlock, 0, st>>>(w, rows, cols, gcols, lo, hi, bad);
}

} // namespace

extern "C" int autoq_group_ranges(int dev, const void *w, int dtype, int64_t rows, int64_t cols, int64_t group_cols,
                                  int per_tensor, float *lo, float *hi, int32_t *nonfinite, void *stream) {
  const char *op = "autoq_group_ranges";
  AUTOQ_TRY(check_matrix(op, w, dtype, rows, cols, group_cols, per_tensor));
  AUTOQ_TRY(autoq_use_device(dev, op));
  cudaStream_t st = (cudaStream_t)stream;
  // Per tensor: per-row ranges first (lo/hi must then hold rows entries), then one block.
  float *l = lo, *h = hi;
  int32_t *b = nonfinite;
  if (per_tensor && rows > 1) {
    void *tmp = nullptr;
    size_t bytes = (size_t)rows * (2 * sizeof(float) + sizeof(int32_t));
    AUTOQ_TRY(autoq_malloc(dev, &tmp, bytes));
    l = (float *)tmp;
    h = l + rows;
    b = (int32_t *)(h + rows);
    switch (dtype) {
    case AUTOQ_F32: launch_ranges<AUTOQ_F32>(w, rows, cols, cols, l, h, b, st); break;
    case AUTOQ_F16: launch_ranges<AUTOQ_F16>(w, rows, cols, cols, l, h, b, st); break;
    default: launch_ranges<AUTOQ_BF16>(w, rows, cols, cols, l, h, b, st); break;
    }
    int rc = autoq_check_launch(op, "group_ranges_kernel");
    if (rc == 0) {
      ranges_rows_to_one_kernel<<<1, 256, 0, st>>>(rows, l, h, b);
      rc = autoq_check_launch(op, "ranges_rows_to_one_kernel");
    }
    if (rc == 0) {
      cudaError_t e = cudaMemcpyAsync(lo, l, sizeof(float), cudaMemcpyDeviceToDevice, st);
      if (e == cudaSuccess) e = cudaMemcpyAsync(hi, h, sizeof(float), cudaMemcpyDeviceToDevice, st);
      if (e == cudaSuccess) e = cudaMemcpyAsync(nonfinite, b, sizeof(int32_t), cudaMemcpyDeviceToDevice, st);
      if (e == cudaSuccess) e = cudaStreamSynchronize(st);
      if (e != cudaSuccess) rc = autoq_fail_cuda(e, "autoq_group_ranges (per-tensor reduction)");
    } else {
      (void)cudaStreamSynchronize(st);
    }
    cudaFree(tmp);
    return rc;
  }
  switch (dtype) {
  case AUTOQ_F32: launch_ranges<AUTOQ_F32>(w, rows, cols, group_cols, l, h, b, st); break;
  case AUTOQ_F16: launch_ranges<AUTOQ_F16>(w, rows, cols, group_cols, l, h, b, st); break;
  default: launch_ranges<AUTOQ_BF16>(w, rows, cols, group_cols, l, h, b, st); break;
  }
  return autoq_check_launch(op, "group_ranges_kernel");
}

extern "C" int autoq_compute_params(int dev, const float *lo, const float *hi, int64_t n, int bits, int symmetric,
                                    float *scales, int32_t *zeros, void *stream) {
  const char *op = "autoq_compute_params";
  if (bits < 3 || bits > 8) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bits must be 3 to 8, got %d", op, bits);
  if (!symmetric && !zeros) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: asymmetric scheme needs zeros", op);
  if (n <= 0) return 0;
  AUTOQ_TRY(autoq_use_device(dev, op));
  compute_params_kernel<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(lo, hi, n, bits, symmetric,
                                                                                         scales, zeros);
  return autoq_check_launch(op, "compute_params_kernel");
}

extern "C" int autoq_channel_absmax(int dev, const void *x, int dtype, int64_t rows, int64_t cols, float *absmax,
                                    uint64_t *nonfinite, void *stream) {
  const char *op = "autoq_channel_absmax";
  AUTOQ_TRY(check_matrix(op, x, dtype, rows, cols, cols, 0));
  AUTOQ_TRY(autoq_use_device(dev, op));
  cudaStream_t st = (cudaStream_t)stream;
  AUTOQ_CUDA(op, cudaMemsetAsync(absmax, 0, (size_t)cols * sizeof(float), st));
  AUTOQ_CUDA(op, cudaMemsetAsync(nonfinite, 0, sizeof(uint64_t), st));
  const int threads = 256;
  const int64_t rows_per_block = 64;
  dim3 grid((unsigned)((cols + threads - 1) / threads), (unsigned)((rows + rows_per_block - 1) / rows_per_block));
  if (grid.y > 65535) return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: %lld rows is too many", op, (long long)rows);
  unsigned long long *nf = (unsigned long long *)nonfinite;
  switch (dtype) {
  case AUTOQ_F32: channel_absmax_kernel<AUTOQ_F32><<<grid, threads, 0, st>>>(x, rows, cols, rows_per_block, absmax, nf); break;
  case AUTOQ_F16: channel_absmax_kernel<AUTOQ_F16><<<grid, threads, 0, st>>>(x, rows, cols, rows_per_block, absmax, nf); break;
  default: channel_absmax_kernel<AUTOQ_BF16><<<grid, threads, 0, st>>>(x, rows, cols, rows_per_block, absmax, nf); break;
  }
  return autoq_check_launch(op, "channel_absmax_kernel");
}
