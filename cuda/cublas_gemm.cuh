// cublas_gemm.cuh: the one cuBLAS call behind the FP16 baseline (autoq_gemm_f16_cublas) and the
// classifier GEMM of the Llama prefill (autoq_model_gemm_f16_f32out): both are F16 x F16 with
// F32 accumulation and differ only in the output type. Defined in gemm_cublas.cu, which owns
// the per-device handles.
#pragma once

#include <cuda_runtime.h>
#include <library_types.h>
#include <stdint.h>

// out[M, N] = A[M, K] x W[N, K]^T, A and W row-major F16, out row-major of out_type (CUDA_R_16F
// or CUDA_R_32F); checks the shape and pointers, makes dev current, sets the stream on dev's
// handle. op names the entry point and what the GEMM in error messages.
int autoq_cublas_gemm_f16(const char *op, const char *what, int dev, const void *A_f16, const void *W_f16, void *out,
                          cudaDataType out_type, int64_t M, int64_t N, int64_t K, void *stream);
