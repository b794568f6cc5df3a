// gemm_cublas.cu: the FP16 baseline (cuBLAS) that the quantized GEMMs are measured against.
//
// Baseline: out[M, N] = A[M, K] x W[N, K]^T, all row-major F16, F32 accumulation. cuBLAS is
// column-major, so we compute out^T [N, M] = W^T... in its terms: C (N x M, ld N) =
// op_T(W as K x N col-major, ld K) x op_N(A as K x M col-major, ld K), i.e.
// cublasGemmEx(T, N, N, M, K, W, K, A, K, out, N) with CUBLAS_COMPUTE_32F.
// The handle is created once per device (guarded by a mutex) and reused, by this baseline and
// by the classifier GEMM (model_classifier.cu, F32 output); the stream is set on every call.
#include <cublas_v2.h>

#include <mutex>

#include "autoq_gemm.h"
#include "common.cuh"
#include "cublas_gemm.cuh"

namespace {

std::mutex g_mu;
cublasHandle_t g_handles[64];

const char *cublas_status_name(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

int get_handle(int dev, cublasHandle_t *h, const char *op) {
  if (dev < 0 || dev >= 64) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: device %d out of range", op, dev);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_handles[dev] == nullptr) {
    cublasStatus_t s = cublasCreate(&g_handles[dev]);
    if (s != CUBLAS_STATUS_SUCCESS) {
      g_handles[dev] = nullptr;
      return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasCreate on device %d: %s", op, dev, cublas_status_name(s));
    }
  }
  *h = g_handles[dev];
  return 0;
}

} // namespace

int autoq_cublas_gemm_f16(const char *op, const char *what, int dev, const void *A_f16, const void *W_f16, void *out,
                          cudaDataType out_type, int64_t M, int64_t N, int64_t K, void *stream) {
  if (M < 1 || N < 1 || K < 1 || M > 0x7fffffffLL || N > 0x7fffffffLL || K > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld: each must be in [1, 2^31)", op,
                           (long long)M, (long long)N, (long long)K);
  if (A_f16 == nullptr || W_f16 == nullptr || out == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL device pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cublasHandle_t h;
  AUTOQ_TRY(get_handle(dev, &h, op));
  cublasStatus_t s = cublasSetStream(h, (cudaStream_t)stream);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasSetStream: %s", op, cublas_status_name(s));
  const float alpha = 1.0f, beta = 0.0f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, W_f16, CUDA_R_16F, (int)K, A_f16,
                   CUDA_R_16F, (int)K, &beta, out, out_type, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasGemmEx(%s, M=%lld N=%lld K=%lld): %s", op, what,
                           (long long)M, (long long)N, (long long)K, cublas_status_name(s));
  return autoq_check_launch(op, "cublasGemmEx");
}

extern "C" int autoq_gemm_f16_cublas(int dev, const void *A_f16, const void *W_f16, void *out_f16, int64_t M,
                                     int64_t N, int64_t K, void *stream) {
  return autoq_cublas_gemm_f16("autoq_gemm_f16_cublas", "F16", dev, A_f16, W_f16, out_f16, CUDA_R_16F, M, N, K, stream);
}
