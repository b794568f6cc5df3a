/*
 * autoq_gptq.h: GPTQ on the GPU (gptq.cu): Hessian accumulation, the inverse-Hessian
 * factor (cuSOLVER), and the blocked column loop with activation-aware group parameters.
 * Conventions as autoq.h: int status (0 ok, cudaError_t > 0, negative AUTOQ_ERR_*), the
 * message in autoq_last_error(), `stream` a cudaStream_t as void* (NULL: default stream).
 * Every function here synchronises its stream before returning.
 */
#ifndef AUTOQ_GPTQ_H
#define AUTOQ_GPTQ_H

#include <stddef.h>
#include <stdint.h>

#include "autoq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The matrix handed to autoq_gptq_factor is not positive definite (more damping may cure it). */
enum { AUTOQ_ERR_NOT_PD = -100 };

/* h += x^T x: x is [m, k] float32 row-major, h is [k, k] float64 (both on the device).
 * The products are float64 (cuBLAS DGEMM on x converted exactly to float64). */
int autoq_gptq_hessian_add(int dev, const float *x, int64_t m, int64_t k, double *h, void *stream);
/* The same with x in F16 (the model runner's activations), widened exactly to float64. */
int autoq_gptq_hessian_add_f16(int dev, const void *x_f16, int64_t m, int64_t k, double *h, void *stream);

/* In place: a ([n, n] float64, symmetric positive definite, device) becomes U with
 * U^T U = a^-1, U upper triangular read row-major (entries below the diagonal are junk).
 * Cholesky, inverse from it, Cholesky of the inverse (cuSOLVER potrf/potri/potrf). Not
 * positive definite: AUTOQ_ERR_NOT_PD with *pivot set to the failing (1-based) minor. */
int autoq_gptq_factor(int dev, double *a, int64_t n, int *pivot, void *stream);

typedef struct {
  int bits;         /* 4 or 8 */
  int sym;          /* 1: symmetric */
  int group_cols;   /* columns per scale group (cols for per-channel/per-tensor) */
  int per_tensor;   /* 1: one scale for the whole matrix (fixed_params must be 1) */
  int fixed_params; /* 1: scales/zeros are inputs (per-tensor, per-channel); 0: chosen when each group is reached */
  int clip;         /* 0: min/max, 1: weight MSE grid, 2: act-mse grid (needs hact; group_cols <= 256) */
  int block;        /* columns per block, 1..128; block % group_cols == 0 or group_cols % block == 0 unless fixed */
} autoq_gptq_args;

/* GPTQ in natural column order. w32: [rows, cols] float32 weights (dead columns already
 * zeroed); u: the factor from autoq_gptq_factor; hact: [cols, cols] float64 H for clip 2
 * (else NULL); scales/zeros: [rows * cols/group_cols] (1 for per-tensor) float32/int32, inputs
 * when fixed_params, outputs otherwise (zeros may be NULL when sym); levels: [rows, cols]
 * int32 output. All pointers are device memory. */
int autoq_gptq_run(int dev, const autoq_gptq_args *a, int64_t rows, int64_t cols, const float *w32,
                   const double *u, const double *hact, float *scales, int32_t *zeros, int32_t *levels,
                   void *stream);

#ifdef __cplusplus
}
#endif

#endif
