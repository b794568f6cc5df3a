// quantize.cu: quantize weights with given scales/zero points, and dequantize back, with
// exactly quant.Scheme.QuantizeValue / quant.DequantizeValue (float32 IEEE division, rintf =
// round half to even, saturation to the scheme's range).
//
// Layout: w is [rows, cols] row-major (F32/F16/BF16). q is the QTensor data layout for any
// width from 3 to 8 bits (common.cuh, quant/qtensor.go): each row a little-endian bit stream
// of `bits`-wide fields padded to ceil(cols*bits/8) bytes, two's complement (symmetric) or
// unsigned (asymmetric). So
//   8 bits: one byte per element, int8 (symmetric, [-128,127]) or uint8 (asymmetric, [0,255]);
//   4 bits: two elements per byte, element 2i in the low nibble, each row padded to
//           (cols+1)/2 bytes; signed nibbles [-8,7] (symmetric) or unsigned [0,15];
//   3, 5, 6, 7 bits: fields straddle bytes; eight elements from a multiple of 8 fill
//           exactly `bits` bytes.
// Scales/zeros are [rows, groups] (one entry per tensor when per_tensor).
//
// Quantize kernels (autoq_quantize's `kernel` argument; the Go dispatch table picks the first
// that takes the call, in this order). All use the same per-element arithmetic
// (autoq_quantize_value), so all give the same bits:
//   AUTOQ_QUANTIZE_PERSISTENT (quantize_persistent.cu): persistent grid, software-pipelined
//     loads; w 16-byte aligned, q 8-byte aligned, cols and group_cols multiples of 8,
//     rows*cols/8 < 2^31. The fastest (H100 run 3).
//   AUTOQ_QUANTIZE_ROWS, quantize_rows_kernel (same alignment and multiples of 8, cols <
//     2^31; any number of chunks): a 2D grid, blockIdx.y = row (grid-stride over rows),
//     threads along the row's 8-element chunks, two chunks per thread with both 16-byte loads
//     issued before any arithmetic; the group index is one 32-bit division.
//   AUTOQ_QUANTIZE_BYTES, quantize_byte_kernel (any shape): one thread per output byte,
//     quantizing the elements whose fields touch it (1 for 8 bits, 2 for 4, up to 3 for 3
//     bits; an element straddling two bytes is quantized by both threads, alike).
//   dequantize_kernel: one thread per output element, grid-stride.
#include "common.cuh"

namespace {

struct QArgs {
  int64_t rows, cols, group_cols, groups;
  int per_tensor, bits, sym;
  int32_t qlo, qhi;
  const float *scales;
  const int32_t *zeros;
};

__device__ __forceinline__ int64_t param_index(const QArgs &a, int64_t r, int64_t c) {
  return a.per_tensor ? 0 : r * a.groups + c / a.group_cols;
}

// Quantizes the 8 elements x (flat elements e..e+7, e a multiple of 8, rows a multiple of
// 8 long) and stores them: the chunk's `bits` bytes start at byte e/8*bits.
__device__ __forceinline__ bool quantize8_store(const QArgs &a, const float (&x)[8], float scale, int32_t zero,
                                                uint8_t *__restrict__ q, int64_t e) {
  uint32_t v[8];
  bool bad = false;
#pragma unroll
  for (int j = 0; j < 8; j++) {
    bad |= !autoq_is_finite_bits(x[j]);
    v[j] = autoq_level_field(autoq_quantize_value(x[j], scale, zero, a.qlo, a.qhi), a.bits);
  }
  autoq_store_chunk(q + e / 8 * a.bits, autoq_pack8(v, a.bits), a.bits);
  return bad;
}

template <int DT>
__global__ void __launch_bounds__(256) quantize_rows_kernel(const void *__restrict__ w, QArgs a, uint8_t *__restrict__ q,
                                                            int32_t *__restrict__ nonfinite) {
  const int chunks = (int)(a.cols / 8), gcols = (int)a.group_cols, groups = (int)a.groups;
  const int step = gridDim.x * blockDim.x;
  bool bad = false;
  for (int64_t r = blockIdx.y; r < a.rows; r += gridDim.y) {
    const int64_t k_row = r * chunks; // flat chunk index of the row's first chunk
    const int64_t p_row = a.per_tensor ? 0 : r * groups;
    for (int c8 = blockIdx.x * blockDim.x + threadIdx.x; c8 < chunks; c8 += 2 * step) {
      const int c8b = c8 + step;
      const bool two = c8b < chunks;
      float x0[8], x1[8];
      if (DT == AUTOQ_F32) {
        autoq_load_vec<DT>(w, 2 * (k_row + c8), x0);
        autoq_load_vec<DT>(w, 2 * (k_row + c8) + 1, x0 + 4);
        if (two) {
          autoq_load_vec<DT>(w, 2 * (k_row + c8b), x1);
          autoq_load_vec<DT>(w, 2 * (k_row + c8b) + 1, x1 + 4);
        }
      } else {
        autoq_load_vec<DT>(w, k_row + c8, x0);
        if (two) autoq_load_vec<DT>(w, k_row + c8b, x1);
      }
      const int64_t pi0 = a.per_tensor ? 0 : p_row + (groups == 1 ? 0 : (c8 * 8) / gcols);
      bad |= quantize8_store(a, x0, a.scales[pi0], a.sym ? 0 : a.zeros[pi0], q, (k_row + c8) * 8);
      if (two) {
        const int64_t pi1 = a.per_tensor ? 0 : p_row + (groups == 1 ? 0 : (c8b * 8) / gcols);
        bad |= quantize8_store(a, x1, a.scales[pi1], a.sym ? 0 : a.zeros[pi1], q, (k_row + c8b) * 8);
      }
    }
  }
  if (bad) atomicOr(nonfinite, 1);
}

template <int DT>
__global__ void quantize_byte_kernel(const void *__restrict__ w, QArgs a, uint8_t *__restrict__ q,
                                     int32_t *__restrict__ nonfinite) {
  const int64_t row_bytes = autoq_row_bytes(a.cols, a.bits);
  const int64_t nbytes = a.rows * row_bytes;
  for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < nbytes; b += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = b / row_bytes, cb = b % row_bytes;
    bool bad = false;
    const uint32_t out = autoq_packed_byte(cb, a.cols, a.bits, [&](int64_t c) {
      const int64_t pi = param_index(a, r, c);
      const float x = autoq_load1<DT>(w, r * a.cols + c);
      bad |= !autoq_is_finite_bits(x);
      const int32_t zero = a.sym ? 0 : a.zeros[pi];
      return autoq_level_field(autoq_quantize_value(x, a.scales[pi], zero, a.qlo, a.qhi), a.bits);
    });
    if (bad) atomicOr(nonfinite, 1);
    q[b] = (uint8_t)out;
  }
}

__global__ void dequantize_kernel(const uint8_t *__restrict__ q, QArgs a, float *__restrict__ out) {
  const int64_t n = a.rows * a.cols;
  const int64_t row_bytes = autoq_row_bytes(a.cols, a.bits);
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / a.cols, c = e % a.cols;
    const int32_t level = autoq_load_level(q + r * row_bytes, c, a.bits, a.sym);
    const int64_t pi = param_index(a, r, c);
    const int32_t zero = a.sym ? 0 : a.zeros[pi];
    out[e] = autoq_dequantize_value(level, a.scales[pi], zero);
  }
}

int make_args(const char *op, int64_t rows, int64_t cols, int64_t group_cols, int per_tensor, int bits, int sym,
              const float *scales, const int32_t *zeros, QArgs *a) {
  if (rows <= 0 || cols <= 0 || group_cols <= 0 || cols % group_cols != 0 || (per_tensor && group_cols != cols))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bad shape rows=%lld cols=%lld group_cols=%lld per_tensor=%d", op,
                           (long long)rows, (long long)cols, (long long)group_cols, per_tensor);
  if (bits < 3 || bits > 8) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: bits must be 3 to 8, got %d", op, bits);
  if (!scales) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null scales", op);
  if (!sym && !zeros) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: asymmetric scheme needs zero points", op);
  a->rows = rows;
  a->cols = cols;
  a->group_cols = group_cols;
  a->groups = cols / group_cols;
  a->per_tensor = per_tensor;
  a->bits = bits;
  a->sym = sym;
  a->qlo = sym ? -(1 << (bits - 1)) : 0;
  a->qhi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  a->scales = scales;
  a->zeros = zeros;
  return 0;
}

unsigned grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;
  return (unsigned)b;
}

} // namespace

// The persistent kernel (quantize_persistent.cu). autoq_quantize_persistent: the caller has
// validated the arguments, made dev current and checked autoq_quantize_persistent_fits.
extern "C" int autoq_quantize_persistent_fits(const void *w, int64_t rows, int64_t cols, int64_t group_cols,
                                              const uint8_t *q);
extern "C" int autoq_quantize_persistent(int dev, const void *w, int dtype, int64_t rows, int64_t cols,
                                         int64_t group_cols, int per_tensor, int bits, int symmetric,
                                         const float *scales, const int32_t *zeros, uint8_t *q, int32_t *nonfinite,
                                         void *stream);

namespace {

template <int DT>
int launch_quantize(int kernel, const void *w, const QArgs &a, uint8_t *q, int32_t *nonfinite, cudaStream_t st) {
  const int threads = 256;
  if (kernel == AUTOQ_QUANTIZE_ROWS) {
    const int64_t chunks = a.cols / 8;
    // Threads per row: 2 chunks each, up to 256; rows over the y dimension (<= 65535).
    const int64_t tpr = (chunks + 1) / 2;
    const unsigned gx = (unsigned)std::min<int64_t>((tpr + threads - 1) / threads, 1 << 16);
    const unsigned gy = (unsigned)std::min<int64_t>(a.rows, 65535);
    quantize_rows_kernel<DT><<<dim3(gx, gy), threads, 0, st>>>(w, a, q, nonfinite);
    return autoq_check_launch("autoq_quantize", "quantize_rows_kernel");
  }
  const int64_t nbytes = a.rows * ((a.cols * a.bits + 7) / 8);
  quantize_byte_kernel<DT><<<grid_for(nbytes, threads), threads, 0, st>>>(w, a, q, nonfinite);
  return autoq_check_launch("autoq_quantize", "quantize_byte_kernel");
}

} // namespace

extern "C" int autoq_quantize_fits(int kernel, const void *w, int64_t rows, int64_t cols, int64_t group_cols,
                                   const uint8_t *q) {
  switch (kernel) {
  case AUTOQ_QUANTIZE_PERSISTENT:
    return autoq_quantize_persistent_fits(w, rows, cols, group_cols, q);
  case AUTOQ_QUANTIZE_ROWS: // whole 16-byte chunks in every row and group, 32-bit chunk index in a row
    return (uintptr_t)w % 16 == 0 && (uintptr_t)q % 8 == 0 && cols % 8 == 0 && group_cols % 8 == 0 &&
           cols < (1LL << 31);
  case AUTOQ_QUANTIZE_BYTES:
    return 1;
  case AUTOQ_QUANTIZE_BATCHED_ROWS: {
    const autoq_quant_job job{w, (uint8_t *)q, nullptr, nullptr, rows, cols, group_cols, 0, 0};
    return autoq_quantize_batch_fits(&job);
  }
  }
  return 0;
}

extern "C" int autoq_quantize(int dev, int kernel, const void *w, int dtype, int64_t rows, int64_t cols,
                              int64_t group_cols, int per_tensor, int bits, int symmetric, const float *scales,
                              const int32_t *zeros, uint8_t *q, int32_t *nonfinite, void *stream) {
  const char *op = "autoq_quantize";
  QArgs a;
  AUTOQ_TRY(make_args(op, rows, cols, group_cols, per_tensor, bits, symmetric, scales, zeros, &a));
  if (!w || !q || !nonfinite) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  if (dtype != AUTOQ_F32 && dtype != AUTOQ_F16 && dtype != AUTOQ_BF16)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: dtype %d is not F32, F16 or BF16", op, dtype);
  if (kernel != AUTOQ_QUANTIZE_PERSISTENT && kernel != AUTOQ_QUANTIZE_ROWS && kernel != AUTOQ_QUANTIZE_BYTES &&
      kernel != AUTOQ_QUANTIZE_BATCHED_ROWS)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: unknown quantize kernel %d", op, kernel);
  if (!autoq_quantize_fits(kernel, w, rows, cols, group_cols, q))
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: kernel %d cannot take this call (w %p, q %p, cols %lld, group %lld, rows %lld): see "
                           "autoq_quantize_fits",
                           op, kernel, w, (void *)q, (long long)cols, (long long)group_cols, (long long)rows);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cudaStream_t st = (cudaStream_t)stream;
  if (kernel == AUTOQ_QUANTIZE_PERSISTENT)
    return autoq_quantize_persistent(dev, w, dtype, rows, cols, group_cols, per_tensor, bits, symmetric, scales, zeros,
                                     q, nonfinite, stream);
  if (kernel == AUTOQ_QUANTIZE_BATCHED_ROWS) {
    const autoq_quant_job job{w, q, scales, zeros, rows, cols, group_cols, per_tensor, 0};
    return autoq_quantize_batch(dev, &job, 1, dtype, bits, symmetric, nonfinite, stream);
  }
  AUTOQ_CUDA(op, cudaMemsetAsync(nonfinite, 0, sizeof(int32_t), st));
  switch (dtype) {
  case AUTOQ_F32: return launch_quantize<AUTOQ_F32>(kernel, w, a, q, nonfinite, st);
  case AUTOQ_F16: return launch_quantize<AUTOQ_F16>(kernel, w, a, q, nonfinite, st);
  }
  return launch_quantize<AUTOQ_BF16>(kernel, w, a, q, nonfinite, st);
}

extern "C" int autoq_dequantize(int dev, const uint8_t *q, int64_t rows, int64_t cols, int64_t group_cols,
                                int per_tensor, int bits, int symmetric, const float *scales, const int32_t *zeros,
                                float *out, void *stream) {
  const char *op = "autoq_dequantize";
  QArgs a;
  AUTOQ_TRY(make_args(op, rows, cols, group_cols, per_tensor, bits, symmetric, scales, zeros, &a));
  if (!q || !out) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  const int threads = 256;
  dequantize_kernel<<<grid_for(rows * cols, threads), threads, 0, (cudaStream_t)stream>>>(q, a, out);
  return autoq_check_launch(op, "dequantize_kernel");
}
