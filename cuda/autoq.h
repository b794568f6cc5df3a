/*
 * autoq.h: the C API of autoq's CUDA library (libautoq_cuda.a), called from Go through cgo
 * (package cgo, build tag cuda). Plain C, no CUDA headers, so cgo can include it as is.
 *
 * Conventions
 *   - Every function returns an int status: 0 on success, a cudaError_t value (> 0) for a
 *     CUDA failure, or one of the negative AUTOQ_ERR_* codes below. On failure a message
 *     naming the operation and the kernel is stored in a thread-local buffer that
 *     autoq_last_error() returns (read it on the same OS thread, right after the call; the
 *     Go wrappers lock the goroutine to its thread around each call). Out-of-memory
 *     messages say how many bytes were requested and how many were free. Nothing here
 *     calls exit or abort.
 *   - Every call takes the device ordinal `dev` and makes it current on the calling thread
 *     (the Go runtime moves goroutines between threads, so no call relies on an earlier
 *     cudaSetDevice).
 *   - `stream` is a cudaStream_t passed as void* (NULL: the legacy default stream).
 *     Kernel launches are asynchronous; their execution errors surface at the next
 *     synchronising call (the memcpy_d2h / synchronize functions).
 *   - Weight matrices are [rows, cols] row-major with dtype AUTOQ_F32/F16/BF16 (the same
 *     numbers as Go's tensor.DType). A scale group is group_cols consecutive columns of one
 *     row; groups per row = cols / group_cols; per_tensor != 0 means one group for the
 *     whole matrix (then group_cols must equal cols).
 */
#ifndef AUTOQ_H
#define AUTOQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  AUTOQ_OK = 0,
  AUTOQ_ERR_INVALID = -1,     /* bad argument (shape, dtype, null pointer) */
  AUTOQ_ERR_UNSUPPORTED = -2, /* device too old, or a case the kernels do not handle */
};

enum { AUTOQ_F32 = 1, AUTOQ_F16 = 2, AUTOQ_BF16 = 3 };

/* The message of the last failed call on this thread ("" if none). */
const char *autoq_last_error(void);

/* ---- devices (device.cu) ---- */

typedef struct {
  char name[256];
  int sm_count;
  int cc_major, cc_minor;
  uint64_t total_mem_bytes;
  int mem_clock_khz;       /* cudaDevAttrMemoryClockRate */
  int mem_bus_width_bits;  /* cudaDevAttrGlobalMemoryBusWidth */
  double mem_bandwidth_gbs; /* 2 * clock * bus width / 8 (DDR), in GB/s (1e9 bytes) */
  int l2_bytes;
  int max_shared_per_block_optin;
} autoq_device_info;

int autoq_device_count(int *count);
int autoq_device_get_info(int dev, autoq_device_info *info);
/* Fails with AUTOQ_ERR_UNSUPPORTED for compute capability < 8.0. */
int autoq_device_check(int dev);
int autoq_device_synchronize(int dev);
int autoq_mem_info(int dev, uint64_t *free_bytes, uint64_t *total_bytes);

/* ---- memory, streams, events (device.cu) ---- */

int autoq_malloc(int dev, void **ptr, size_t bytes);
int autoq_free(int dev, void *ptr);
int autoq_memset(int dev, void *ptr, int value, size_t bytes, void *stream);
/* Copies that return when the copy is complete (any host memory). */
int autoq_memcpy_h2d(int dev, void *dst, const void *src, size_t bytes, void *stream);
int autoq_memcpy_d2h(int dev, void *dst, const void *src, size_t bytes, void *stream);
int autoq_memcpy_d2d(int dev, void *dst, const void *src, size_t bytes, void *stream);
/* Asynchronous copies: the host side must be pinned memory (autoq_host_alloc). */
int autoq_memcpy_h2d_async(int dev, void *dst, const void *src, size_t bytes, void *stream);
int autoq_memcpy_d2h_async(int dev, void *dst, const void *src, size_t bytes, void *stream);
int autoq_host_alloc(int dev, void **ptr, size_t bytes);
int autoq_host_free(int dev, void *ptr);

int autoq_stream_create(int dev, void **stream);
int autoq_stream_destroy(int dev, void *stream);
int autoq_stream_synchronize(int dev, void *stream);
int autoq_event_create(int dev, void **event);
int autoq_event_destroy(int dev, void *event);
int autoq_event_record(int dev, void *event, void *stream);
int autoq_event_synchronize(int dev, void *event);
int autoq_event_elapsed_ms(int dev, void *start, void *end, float *ms);

/* ---- per-group ranges and parameters (reduce.cu) ---- */

/* lo/hi[g] = min/max of group g's values, g over [rows, groups] row-major (1 entry when
 * per_tensor). nonfinite[g] = 1 if the group holds a NaN or Inf (lo/hi then undefined). */
int autoq_group_ranges(int dev, const void *w, int dtype, int64_t rows, int64_t cols,
                       int64_t group_cols, int per_tensor, float *lo, float *hi,
                       int32_t *nonfinite, void *stream);
/* scales/zeros[i] = quant.Scheme.ComputeParams(lo[i], hi[i]), bit for bit. zeros may be
 * NULL for symmetric schemes. */
int autoq_compute_params(int dev, const float *lo, const float *hi, int64_t n, int bits,
                         int symmetric, float *scales, int32_t *zeros, void *stream);
/* absmax[c] = max over rows of |x[r, c]| for finite x (0 if none), nonfinite[0] += count of
 * NaN/Inf. x is [rows, cols] of dtype. */
int autoq_channel_absmax(int dev, const void *x, int dtype, int64_t rows, int64_t cols,
                         float *absmax, uint64_t *nonfinite, void *stream);

/* ---- quantize / dequantize (quantize.cu, quantize_persistent.cu) ---- */

/* Quantize kernels (autoq_quantize's `kernel`; all give the same bits, the Go dispatch table
 * runs the first that fits, in this order). */
enum {
  AUTOQ_QUANTIZE_PERSISTENT = 1, /* quantize_persistent.cu: aligned, multiples of 8, < 2^34 values */
  AUTOQ_QUANTIZE_ROWS = 2,       /* quantize.cu's rows kernel: aligned, multiples of 8 */
  AUTOQ_QUANTIZE_BYTES = 3,      /* quantize.cu's byte kernel: any shape */
  AUTOQ_QUANTIZE_BATCHED_ROWS = 4 /* quantize_batched.cu (one job): aligned, multiples of 8 */
};
/* 1 when `kernel` can quantize this call (pointer alignment and shape), else 0. */
int autoq_quantize_fits(int kernel, const void *w, int64_t rows, int64_t cols, int64_t group_cols,
                        const uint8_t *q);
/* q: int8 / uint8 levels, one byte each ([rows, cols]), or packed int4 (element 2i in the
 * low nibble, rows padded to (cols+1)/2 bytes). Scales/zeros indexed like group_ranges
 * (zeros NULL when symmetric). nonfinite[0] is set to 1 if w held a NaN or Inf, else 0.
 * Fails with AUTOQ_ERR_INVALID when `kernel` does not fit the call. */
int autoq_quantize(int dev, int kernel, const void *w, int dtype, int64_t rows, int64_t cols,
                   int64_t group_cols, int per_tensor, int bits, int symmetric,
                   const float *scales, const int32_t *zeros, uint8_t *q,
                   int32_t *nonfinite, void *stream);
/* Several tensors of one dtype and scheme in one launch (quantize_batched.cu: a warp per row,
 * up to 32 jobs per launch, more in further launches). Each job is autoq_quantize's call of
 * the same name fields; w 16-byte and q 8-byte aligned, cols and group_cols multiples of 8.
 * nonfinite: device int32 [njobs], set to 1 for the jobs whose w held a NaN or Inf, else 0. */
typedef struct {
  const void *w;        /* device [rows, cols] of the batch's dtype */
  uint8_t *q;           /* device levels, autoq_quantize's layout */
  const float *scales;  /* device, [rows, cols/group_cols] (1 when per_tensor) */
  const int32_t *zeros; /* device, same shape; NULL when symmetric */
  int64_t rows, cols, group_cols;
  int32_t per_tensor, pad;
} autoq_quant_job;
int autoq_quantize_batch_fits(const autoq_quant_job *job);
int autoq_quantize_batch(int dev, const autoq_quant_job *jobs, int njobs, int dtype, int bits,
                         int symmetric, int32_t *nonfinite, void *stream);
int autoq_dequantize(int dev, const uint8_t *q, int64_t rows, int64_t cols,
                     int64_t group_cols, int per_tensor, int bits, int symmetric,
                     const float *scales, const int32_t *zeros, float *out, void *stream);

/* ---- MSE clipping search (mse_search.cu) ---- */

/* For each group: candidates i = 0..steps-1 with r = (float)(steps_den - i) / steps_den
 * ... see mse_search.cu for the exact grid; picks the smallest error (smallest i on
 * ties) and writes its scale/zero, index and error. lo/hi are the group ranges. */
int autoq_mse_search(int dev, const void *w, int dtype, int64_t rows, int64_t cols,
                     int64_t group_cols, int per_tensor, int bits, int symmetric,
                     const float *lo, const float *hi, int steps, int steps_den,
                     float *scales, int32_t *zeros, int32_t *best_index, double *best_err,
                     void *stream);

/* ---- calibration histograms (histogram_twopass.cu, histogram_onepass.cu) ---- */

#define AUTOQ_HIST_BINS 2048

typedef struct {
  const void *data; /* device pointer, 16-byte aligned for the vector path */
  int64_t n;        /* elements */
  int32_t dtype;    /* AUTOQ_F32/F16/BF16 */
  int32_t pad;
} autoq_hist_input;

/* Per tensor t (stats is [ntensors] of autoq_hist_stats, zeroed by the call):
 * absmax_bits = bits of max |x| over finite x, nan/inf counts. */
typedef struct {
  uint32_t absmax_bits;
  int32_t exp;     /* floor(log2(absmax)) - 10, valid when has_exp */
  int32_t has_exp; /* absmax > 0 */
  int32_t pad;
  uint64_t nan, inf, count; /* count: finite values binned */
} autoq_hist_stats;

/* inputs: device array of ntensors descriptors. counts: device [ntensors, 2048] uint64,
 * zeroed and filled by the call. Bins follow calib's exact rule with each tensor's own
 * exponent (stats[t].exp): a fresh histogram of that tensor alone. Two passes over the
 * input (absmax, then bins); any dtype. */
int autoq_histogram_twopass(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
                            autoq_hist_stats *stats, uint64_t *counts, void *stream);
/* The same outputs in one pass over inputs that are all F16 or BF16, through a per-block
 * histogram of the 2^15 magnitude patterns in 128 KB of shared memory. Scratch: at least
 * autoq_histogram_onepass_scratch_bytes, which is 0 when the device lacks that shared
 * memory (then use the two-pass kernel). */
int64_t autoq_histogram_onepass_scratch_bytes(int dev, int ntensors, int64_t max_n);
int autoq_histogram_onepass(int dev, const autoq_hist_input *inputs, int ntensors, int64_t max_n,
                            autoq_hist_stats *stats, uint64_t *counts, void *scratch,
                            int64_t scratch_bytes, void *stream);
/* autoq_histogram_onepass with warp-aggregated shared-memory updates (lanes holding the same
 * magnitude pattern add once); the same outputs, bit for bit. */
int autoq_histogram_onepass_warpagg(int dev, const autoq_hist_input *inputs, int ntensors,
                                    int64_t max_n, autoq_hist_stats *stats, uint64_t *counts,
                                    void *scratch, int64_t scratch_bytes, void *stream);

/* ---- threshold search (threshold.cu) ---- */

/* One histogram per block (see threshold.cu). counts: device [nhist, 2048] uint64.
 * method: 2 percentile (need[h] = ceil(p*Count/100), computed exactly on the host),
 * 3 mse, 4 entropy (plan: calib's group ranges per candidate for G = levels+1 groups:
 * plan_lo/plan_hi[plan_ranges], plan_idx[1921*G], plan_last[1921]; scratch of
 * autoq_thresholds_scratch_bytes). Outputs per histogram: bins (threshold in bins),
 * objective (entropy: KL; mse: error sum in bin units; percentile: 0), empty (entropy:
 * no mass after the zero-spike replacement). */
int64_t autoq_thresholds_scratch_bytes(int nhist, int method, int plan_ranges);
int autoq_thresholds(int dev, const uint64_t *counts, int nhist, int method, const uint64_t *need,
                     int levels, int zero_spike, const int32_t *plan_lo, const int32_t *plan_hi,
                     int plan_ranges, const int32_t *plan_idx, const int32_t *plan_last,
                     double *scratch, int32_t *bins, double *objective, int32_t *empty,
                     void *stream);
/* out[i] = calib.KLLog(in[i]) on the device (a test hook for the log the searches use). */
int autoq_kllog(int dev, const double *in, double *out, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* AUTOQ_H */
