// gptq.cu: GPTQ on the GPU. The CPU reference is package gptq (gptq_rows.go, clip.go);
// the per-column arithmetic here repeats it operation for operation with _rn intrinsics
// (no fma contraction): quantization decisions inside a block match the CPU bit for bit
// given the same inputs. The factor (cuSOLVER's blocked potrf/potri) and the lazy block
// update (cuBLAS DGEMM) sum in other orders than the CPU, so results agree to float64
// rounding, not bitwise: a level differs only where a value lies within ~1e-13 relative
// of a rounding boundary (see cgo/gptq_test.go for the tolerance).
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <mutex>

#include "autoq_gptq.h"
#include "common.cuh"

namespace {

constexpr int kRows = 8;        // rows per thread block in the column kernel
constexpr int kMaxBlock = 128;  // columns per block (threads per thread block)
constexpr int kMaxClipGroup = 256;
constexpr int kGrid = 80;       // clipping ratios, as quant.MSEGridSteps

std::mutex g_mu;  // serialises GPTQ calls: the cached handles are not shared across streams
cublasHandle_t g_blas[64];
cusolverDnHandle_t g_solver[64];

// The handle of dev in cache, made by create on first use (name: create's, for the message).
template <class H, class Status>
int cached_handle(H (&cache)[64], int dev, H *h, const char *op, Status (*create)(H *), Status ok, const char *name) {
  if (dev < 0 || dev >= 64) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: device %d out of range", op, dev);
  if (!cache[dev]) {
    Status s = create(&cache[dev]);
    if (s != ok) {
      cache[dev] = nullptr;
      return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: %s on device %d failed (status %d)", op, name, dev, (int)s);
    }
  }
  *h = cache[dev];
  return 0;
}

int blas_handle(int dev, cublasHandle_t *h, const char *op) {
  return cached_handle(g_blas, dev, h, op, cublasCreate, CUBLAS_STATUS_SUCCESS, "cublasCreate");
}

int solver_handle(int dev, cusolverDnHandle_t *h, const char *op) {
  return cached_handle(g_solver, dev, h, op, cusolverDnCreate, CUSOLVER_STATUS_SUCCESS, "cusolverDnCreate");
}

// RAII device allocation that reports out-of-memory with sizes.
struct DevBuf {
  void *p = nullptr;
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  int alloc(size_t bytes, const char *op, const char *what) {
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
      size_t fr = 0, tot = 0;
      cudaGetLastError();
      cudaMemGetInfo(&fr, &tot);
      return autoq_set_error((int)e, "%s: allocating %zu bytes for %s: %s (%zu bytes free)", op, bytes, what,
                             cudaGetErrorName(e), fr);
    }
    return 0;
  }
};

__global__ void f32_to_f64_kernel(const float *x, double *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = (double)x[i];
}

// F16 inputs (the model runner's activations) widen exactly to float64.
__global__ void f16_to_f64_kernel(const uint16_t *x, double *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = (double)autoq_f16_to_f32(x[i]);
}

int grid_for(int64_t n) {
  int64_t b = (n + 255) / 256;
  return (int)(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}

// Parameters of one (row, group) for a group reached now: min/max, or the clipping grid
// minimising e^T e (clip 1) or e^T H_g e (clip 2), as gptq.searchGroup. One thread block
// (128 threads) per row; thread c evaluates grid point c.
__global__ void group_params_kernel(const double *w, int64_t rows, int64_t cols, int g, int gs, int bits, int sym,
                                    int clip, const double *hact, float *scales, int32_t *zeros, int groups) {
  __shared__ float vals[kMaxClipGroup];
  __shared__ double errs[kGrid];
  __shared__ float slo, shi;
  int64_t row = blockIdx.x;
  int tid = threadIdx.x;
  int64_t c0 = (int64_t)g * gs;
  if (clip == 0) {
    if (tid == 0) {
      float lo = __double2float_rn(w[row * cols + c0]), hi = lo;
      for (int j = 1; j < gs; j++) {
        float v = __double2float_rn(w[row * cols + c0 + j]);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      float sc;
      int32_t z;
      autoq_compute_params_dev(lo, hi, bits, sym, &sc, &z);
      scales[row * groups + g] = sc;
      if (zeros) zeros[row * groups + g] = z;
    }
    return;
  }
  for (int j = tid; j < gs; j += blockDim.x) vals[j] = __double2float_rn(w[row * cols + c0 + j]);
  __syncthreads();
  if (tid == 0) {
    float lo = vals[0], hi = vals[0];
    for (int j = 1; j < gs; j++) {
      lo = vals[j] < lo ? vals[j] : lo;
      hi = vals[j] > hi ? vals[j] : hi;
    }
    slo = lo;
    shi = hi;
  }
  __syncthreads();
  int qlo = sym ? -(1 << (bits - 1)) : 0, qhi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  if (tid < kGrid) {
    float sc;
    int32_t z;
    autoq_grid_params(tid, 100, slo, shi, bits, sym, &sc, &z);
    double e[kMaxClipGroup];
    for (int j = 0; j < gs; j++) {
      float q = autoq_dequantize_value(autoq_quantize_value(vals[j], sc, z, qlo, qhi), sc, z);
      e[j] = (double)__fsub_rn(q, vals[j]);
    }
    double total = 0;
    if (clip == 1) {
      for (int j = 0; j < gs; j++) total = __dadd_rn(total, __dmul_rn(e[j], e[j]));
    } else {
      for (int i = 0; i < gs; i++) {
        double ei = e[i];
        if (ei == 0) continue;
        const double *hrow = hact + (c0 + i) * cols + c0;
        double off = 0;
        for (int j = i + 1; j < gs; j++) off = __dadd_rn(off, __dmul_rn(hrow[j], e[j]));
        double t = __dadd_rn(__dmul_rn(hrow[i], ei), __dmul_rn(2.0, off));
        total = __dadd_rn(total, __dmul_rn(ei, t));
      }
    }
    errs[tid] = total;
  }
  __syncthreads();
  if (tid == 0) {
    float sc;
    int32_t z;
    autoq_grid_params(autoq_grid_best(errs, kGrid), 100, slo, shi, bits, sym, &sc, &z);
    scales[row * groups + g] = sc;
    if (zeros) zeros[row * groups + g] = z;
  }
}

// Quantizes columns [c0, c1) of the block [i1, i2) for kRows rows: the rows' columns
// [c0, i2) live in shared memory; each column's scaled error (w - q) / U[i,i] is applied
// at once to the later columns of the block and saved in err for the lazy update.
__global__ void columns_kernel(double *w, int64_t rows, int64_t cols, const double *u, int c0, int c1, int i1, int i2,
                               double *err, int bs, int32_t *levels, const float *scales, const int32_t *zeros,
                               int groups, int gs, int per_tensor, int bits, int sym) {
  __shared__ double ws[kRows][kMaxBlock];
  __shared__ double es[kRows];
  int64_t r0 = (int64_t)blockIdx.x * kRows;
  int n = i2 - c0;
  int tid = threadIdx.x;
  for (int r = 0; r < kRows; r++)
    if (r0 + r < rows && tid < n) ws[r][tid] = w[(r0 + r) * cols + c0 + tid];
  __syncthreads();
  int qlo = sym ? -(1 << (bits - 1)) : 0, qhi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  for (int i = c0; i < c1; i++) {
    int li = i - c0;
    if (tid < kRows) {
      int64_t row = r0 + tid;
      double e = 0;
      if (row < rows) {
        int64_t p = per_tensor ? 0 : row * groups + i / gs;
        float sc = scales[p];
        int32_t z = zeros ? zeros[p] : 0;
        double wv = ws[tid][li];
        int32_t lev = autoq_quantize_value(__double2float_rn(wv), sc, z, qlo, qhi);
        levels[row * cols + i] = lev;
        e = __ddiv_rn(__dsub_rn(wv, (double)autoq_dequantize_value(lev, sc, z)), u[(int64_t)i * cols + i]);
        err[row * bs + (i - i1)] = e;
      }
      es[tid] = e;
    }
    __syncthreads();
    if (tid > li && tid < n) {
      double uij = u[(int64_t)i * cols + c0 + tid];
      for (int r = 0; r < kRows; r++) ws[r][tid] = __dadd_rn(ws[r][tid], __dmul_rn(-es[r], uij));
    }
    __syncthreads();
  }
  for (int r = 0; r < kRows; r++)
    if (r0 + r < rows && tid < n) w[(r0 + r) * cols + c0 + tid] = ws[r][tid];
}

}  // namespace

namespace {

// hessian_add is h += x^T x with x [m, k] (float32, or F16 when f16) widened to float64 first.
int hessian_add(int dev, const void *x, bool f16, int64_t m, int64_t k, double *h, void *stream, const char *op) {
  if (!x || !h || m < 0 || k <= 0 || k > (int64_t)1 << 30 || m > ((int64_t)1 << 31) - 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad arguments (m=%lld, k=%lld)", op, (long long)m, (long long)k);
  if (m == 0) return 0;
  AUTOQ_TRY(autoq_use_device(dev, op));
  std::lock_guard<std::mutex> lock(g_mu);
  cudaStream_t st = (cudaStream_t)stream;
  DevBuf xd;
  AUTOQ_TRY(xd.alloc((size_t)(m * k) * sizeof(double), op, "float64 copy of the inputs"));
  if (f16) {
    f16_to_f64_kernel<<<grid_for(m * k), 256, 0, st>>>((const uint16_t *)x, (double *)xd.p, m * k);
    AUTOQ_TRY(autoq_check_launch(op, "f16_to_f64_kernel"));
  } else {
    f32_to_f64_kernel<<<grid_for(m * k), 256, 0, st>>>((const float *)x, (double *)xd.p, m * k);
    AUTOQ_TRY(autoq_check_launch(op, "f32_to_f64_kernel"));
  }
  cublasHandle_t hb;
  AUTOQ_TRY(blas_handle(dev, &hb, op));
  cublasSetStream(hb, st);
  const double one = 1.0;
  // Row-major x [m, k] is column-major x^T [k, m]: h (k x k) += x^T (x^T)^T.
  cublasStatus_t s = cublasDgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, (int)k, (int)k, (int)m, &one, (const double *)xd.p,
                                 (int)k, (const double *)xd.p, (int)k, &one, h, (int)k);
  if (s != CUBLAS_STATUS_SUCCESS) return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasDgemm failed (status %d)", op, (int)s);
  AUTOQ_CUDA(op, cudaStreamSynchronize(st));
  return 0;
}

}  // namespace

extern "C" int autoq_gptq_hessian_add(int dev, const float *x, int64_t m, int64_t k, double *h, void *stream) {
  return hessian_add(dev, x, false, m, k, h, stream, "autoq_gptq_hessian_add");
}

extern "C" int autoq_gptq_hessian_add_f16(int dev, const void *x_f16, int64_t m, int64_t k, double *h, void *stream) {
  return hessian_add(dev, x_f16, true, m, k, h, stream, "autoq_gptq_hessian_add_f16");
}

extern "C" int autoq_gptq_factor(int dev, double *a, int64_t n, int *pivot, void *stream) {
  const char *op = "autoq_gptq_factor";
  if (!a || n <= 0 || n > 65536) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad arguments (n=%lld)", op, (long long)n);
  AUTOQ_TRY(autoq_use_device(dev, op));
  std::lock_guard<std::mutex> lock(g_mu);
  cudaStream_t st = (cudaStream_t)stream;
  cusolverDnHandle_t hs;
  AUTOQ_TRY(solver_handle(dev, &hs, op));
  cusolverDnSetStream(hs, st);
  int lw1 = 0, lw2 = 0;
  // a is symmetric, so its row-major and column-major views agree. potrf LOWER gives
  // column-major L (a = L L^T); potri LOWER its inverse's lower triangle; potrf LOWER of
  // the inverse gives L2, whose column-major lower triangle read row-major is U = L2^T,
  // with U^T U = L2 L2^T = a^-1.
  if (cusolverDnDpotrf_bufferSize(hs, CUBLAS_FILL_MODE_LOWER, (int)n, a, (int)n, &lw1) != CUSOLVER_STATUS_SUCCESS ||
      cusolverDnDpotri_bufferSize(hs, CUBLAS_FILL_MODE_LOWER, (int)n, a, (int)n, &lw2) != CUSOLVER_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cuSOLVER workspace query failed (n=%lld)", op, (long long)n);
  int lw = lw1 > lw2 ? lw1 : lw2;
  DevBuf work, info;
  AUTOQ_TRY(work.alloc((size_t)lw * sizeof(double), op, "cuSOLVER workspace"));
  AUTOQ_TRY(info.alloc(sizeof(int), op, "cuSOLVER info"));
  const char *steps[3] = {"Cholesky of H", "inverse", "Cholesky of the inverse"};
  for (int step = 0; step < 3; step++) {
    cusolverStatus_t s;
    if (step == 1)
      s = cusolverDnDpotri(hs, CUBLAS_FILL_MODE_LOWER, (int)n, a, (int)n, (double *)work.p, lw, (int *)info.p);
    else
      s = cusolverDnDpotrf(hs, CUBLAS_FILL_MODE_LOWER, (int)n, a, (int)n, (double *)work.p, lw, (int *)info.p);
    if (s != CUSOLVER_STATUS_SUCCESS)
      return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cuSOLVER %s failed (status %d)", op, steps[step], (int)s);
    int hinfo = 0;
    AUTOQ_CUDA(op, cudaMemcpyAsync(&hinfo, info.p, sizeof(int), cudaMemcpyDeviceToHost, st));
    AUTOQ_CUDA(op, cudaStreamSynchronize(st));
    if (hinfo > 0) {
      if (pivot) *pivot = hinfo;
      return autoq_set_error(AUTOQ_ERR_NOT_PD, "%s: %s: matrix is not positive definite (leading minor %d)", op,
                             steps[step], hinfo);
    }
    if (hinfo < 0) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %s: bad argument %d", op, steps[step], -hinfo);
  }
  return 0;
}

extern "C" int autoq_gptq_run(int dev, const autoq_gptq_args *a, int64_t rows, int64_t cols, const float *w32,
                              const double *u, const double *hact, float *scales, int32_t *zeros, int32_t *levels,
                              void *stream) {
  const char *op = "autoq_gptq_run";
  if (!a || !w32 || !u || !scales || !levels || rows <= 0 || cols <= 0 || cols > (1 << 30) || rows > (1 << 30))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad arguments", op);
  int gs = a->group_cols, bs = a->block;
  if (a->bits < 3 || a->bits > 8 || gs <= 0 || cols % gs != 0 || bs < 1 || bs > kMaxBlock)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad scheme (bits %d, group %d, block %d, cols %lld)", op, a->bits, gs,
                           bs, (long long)cols);
  if (a->per_tensor && !a->fixed_params)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: per-tensor parameters must be given (fixed_params)", op);
  if (!a->fixed_params && bs % gs != 0 && gs % bs != 0)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: block %d and group %d must divide one another", op, bs, gs);
  if (!a->fixed_params && a->clip != 0 && (gs > kMaxClipGroup || (a->clip == 2 && !hact)))
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: clipping search on the GPU needs group <= %d (got %d) and H", op,
                           kMaxClipGroup, gs);
  if (!a->sym && !zeros) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: asymmetric scheme without zero points", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  std::lock_guard<std::mutex> lock(g_mu);
  cudaStream_t st = (cudaStream_t)stream;
  DevBuf w, err;
  AUTOQ_TRY(w.alloc((size_t)(rows * cols) * sizeof(double), op, "float64 working weights"));
  AUTOQ_TRY(err.alloc((size_t)(rows * bs) * sizeof(double), op, "block errors"));
  double *wd = (double *)w.p, *ed = (double *)err.p;
  f32_to_f64_kernel<<<grid_for(rows * cols), 256, 0, st>>>(w32, wd, rows * cols);
  AUTOQ_TRY(autoq_check_launch(op, "f32_to_f64_kernel"));
  cublasHandle_t hb;
  AUTOQ_TRY(blas_handle(dev, &hb, op));
  cublasSetStream(hb, st);
  const double minus1 = -1.0, one = 1.0;
  int groups = (int)(cols / gs);
  int tiles = (int)((rows + kRows - 1) / kRows);
  for (int64_t i1 = 0; i1 < cols; i1 += bs) {
    int64_t i2 = i1 + bs < cols ? i1 + bs : cols;
    for (int64_t c = i1; c < i2;) {
      int64_t cend = i2;
      if (!a->fixed_params) {
        if (c % gs == 0) {
          group_params_kernel<<<(unsigned)rows, 128, 0, st>>>(wd, rows, cols, (int)(c / gs), gs, a->bits, a->sym,
                                                               a->clip, hact, scales, zeros, groups);
          AUTOQ_TRY(autoq_check_launch(op, "group_params_kernel"));
        }
        int64_t gend = (c / gs + 1) * gs;
        cend = gend < i2 ? gend : i2;
      }
      columns_kernel<<<tiles, kMaxBlock, 0, st>>>(wd, rows, cols, u, (int)c, (int)cend, (int)i1, (int)i2, ed, bs, levels,
                                                  scales, zeros, groups, gs, a->per_tensor, a->bits, a->sym);
      AUTOQ_TRY(autoq_check_launch(op, "columns_kernel"));
      c = cend;
    }
    if (i2 < cols) {
      // Row-major W[:, i2:] -= Err[:, :nb] * U[i1:i2, i2:], in column-major terms
      // W^T[i2:, :] -= U[i1:i2, i2:]^T Err^T.
      int m = (int)(cols - i2), nb = (int)(i2 - i1);
      cublasStatus_t s = cublasDgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, m, (int)rows, nb, &minus1, u + i1 * cols + i2,
                                     (int)cols, ed, bs, &one, wd + i2, (int)cols);
      if (s != CUBLAS_STATUS_SUCCESS)
        return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasDgemm (lazy update) failed (status %d)", op, (int)s);
    }
  }
  AUTOQ_CUDA(op, cudaStreamSynchronize(st));
  return 0;
}
