// mse_search.cu: the MSE clipping search of quant.SearchParams (SearchMSE), bit for bit.
//
// For each scale group with range [lo, hi] (from autoq_group_ranges) and each grid point
// i = 0..steps-1 (quant: steps = MSEGridSteps = 80, den = 100):
//     r = (float)(den - i) / (float)den                       float32 division
//     scale, zero = ComputeParams(lo*r, hi*r)                  float32 products
//     err_i = sum over the group's elements in column order (PerTensor: row-major over the
//             whole matrix) of d*d, d = (double)(deq(x) - x)   float32 subtraction, float64
//             product and sum, each rounded separately (no fma)
// then the smallest err_i wins, the smallest i on ties (strict <), as in quant/mse.go.
//
// Thread mapping: one block per group; thread i evaluates grid point i, looping over the
// group's elements in order (so its float64 sum is the CPU's, operation for operation). All
// threads of a block read the same element at the same time (a broadcast load). Thread 0
// then scans the block's errors in order of i. PerTensor is one block (one group).
#include "common.cuh"

namespace {

constexpr int kMaxSteps = 1024;

template <int DT>
__global__ void mse_search_kernel(const void *__restrict__ w, int64_t rows, int64_t cols, int64_t group_cols,
                                  int per_tensor, int bits, int sym, const float *__restrict__ lo,
                                  const float *__restrict__ hi, int steps, int den, float *__restrict__ scales,
                                  int32_t *__restrict__ zeros, int32_t *__restrict__ best_index,
                                  double *__restrict__ best_err) {
  extern __shared__ double errs[]; // [steps]
  const int64_t g = blockIdx.x;
  const int64_t groups = cols / group_cols;
  const int i = threadIdx.x;
  const int32_t qlo = sym ? -(1 << (bits - 1)) : 0;
  const int32_t qhi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  const float glo = lo[g], ghi = hi[g];
  if (i < steps) {
    float scale;
    int32_t zero;
    autoq_grid_params(i, den, glo, ghi, bits, sym, &scale, &zero);
    double e = 0.0;
    // PerTensor: the whole matrix in row-major order; otherwise the group's columns.
    const int64_t base = per_tensor ? 0 : (g / groups) * cols + (g % groups) * group_cols;
    const int64_t n = per_tensor ? rows * cols : group_cols;
    int64_t k = 0;
    // Loads in batches of 8 (independent of the running sum, so they overlap), then the
    // sum strictly in element order.
    for (; k + 8 <= n; k += 8) {
      float x[8];
#pragma unroll
      for (int j = 0; j < 8; j++) x[j] = autoq_load1<DT>(w, base + k + j);
#pragma unroll
      for (int j = 0; j < 8; j++) {
        const float dq = autoq_dequantize_value(autoq_quantize_value(x[j], scale, zero, qlo, qhi), scale, zero);
        const double d = (double)__fsub_rn(dq, x[j]);
        e = __dadd_rn(e, __dmul_rn(d, d));
      }
    }
    for (; k < n; k++) {
      const float x = autoq_load1<DT>(w, base + k);
      const float dq = autoq_dequantize_value(autoq_quantize_value(x, scale, zero, qlo, qhi), scale, zero);
      const double d = (double)__fsub_rn(dq, x);
      e = __dadd_rn(e, __dmul_rn(d, d));
    }
    errs[i] = e;
  }
  __syncthreads();
  if (i == 0) {
    const int bi = autoq_grid_best(errs, steps);
    float scale;
    int32_t zero;
    autoq_grid_params(bi, den, glo, ghi, bits, sym, &scale, &zero);
    scales[g] = scale;
    if (zeros) zeros[g] = zero;
    if (best_index) best_index[g] = bi;
    if (best_err) best_err[g] = errs[bi];
  }
}

} // namespace

extern "C" int autoq_mse_search(int dev, const void *w, int dtype, int64_t rows, int64_t cols, int64_t group_cols,
                                int per_tensor, int bits, int symmetric, const float *lo, const float *hi, int steps,
                                int steps_den, float *scales, int32_t *zeros, int32_t *best_index, double *best_err,
                                void *stream) {
  const char *op = "autoq_mse_search";
  if (!w || !lo || !hi || !scales) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  if (rows <= 0 || cols <= 0 || group_cols <= 0 || cols % group_cols != 0 || (per_tensor && group_cols != cols))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad shape rows=%lld cols=%lld group_cols=%lld", op,
                           (long long)rows, (long long)cols, (long long)group_cols);
  if (bits < 3 || bits > 8) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bits must be 3 to 8, got %d", op, bits);
  if (!symmetric && !zeros) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: asymmetric scheme needs zeros", op);
  if (steps < 1 || steps > kMaxSteps || steps_den < 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: grid of %d steps over %d is not supported", op, steps, steps_den);
  AUTOQ_TRY(autoq_use_device(dev, op));
  const int64_t ngroups = per_tensor ? 1 : rows * (cols / group_cols);
  if (ngroups > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: %lld groups is too many", op, (long long)ngroups);
  const int threads = (steps + 31) / 32 * 32;
  const size_t smem = (size_t)steps * sizeof(double);
  cudaStream_t st = (cudaStream_t)stream;
  switch (dtype) {
  case AUTOQ_F32:
    mse_search_kernel<AUTOQ_F32><<<(unsigned)ngroups, threads, smem, st>>>(
        w, rows, cols, group_cols, per_tensor, bits, symmetric, lo, hi, steps, steps_den, scales, zeros, best_index, best_err);
    break;
  case AUTOQ_F16:
    mse_search_kernel<AUTOQ_F16><<<(unsigned)ngroups, threads, smem, st>>>(
        w, rows, cols, group_cols, per_tensor, bits, symmetric, lo, hi, steps, steps_den, scales, zeros, best_index, best_err);
    break;
  case AUTOQ_BF16:
    mse_search_kernel<AUTOQ_BF16><<<(unsigned)ngroups, threads, smem, st>>>(
        w, rows, cols, group_cols, per_tensor, bits, symmetric, lo, hi, steps, steps_den, scales, zeros, best_index, best_err);
    break;
  default:
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: dtype %d is not F32, F16 or BF16", op, dtype);
  }
  return autoq_check_launch(op, "mse_search_kernel");
}
