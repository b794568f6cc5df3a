// model_classifier.cu: the classifier GEMM of the Llama prefill (autoq_model_gemm_f16_f32out):
// F16 inputs, F32 logits, through cuBLAS with one handle per device owned by this file.
#include "model_common.cuh"

#include <cublas_v2.h>

#include <mutex>

namespace {

std::mutex g_mu;
cublasHandle_t g_handles[64];

} // namespace

// Same column-major mapping as autoq_gemm_f16_cublas (gemm_cublas.cu): out^T [N, M] =
// W^T-op(W as K x N, ld K) x A as K x M, ld K, with an F32 C matrix (ld N).
extern "C" int autoq_model_gemm_f16_f32out(int dev, const void *A_f16, const void *W_f16, float *out, int64_t M,
                                           int64_t N, int64_t K, void *stream) {
  const char *op = "autoq_model_gemm_f16_f32out";
  if (M < 1 || N < 1 || K < 1 || M > 0x7fffffffLL || N > 0x7fffffffLL || K > 0x7fffffffLL)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape M=%lld N=%lld K=%lld: each must be in [1, 2^31)", op,
                           (long long)M, (long long)N, (long long)K);
  if (A_f16 == nullptr || W_f16 == nullptr || out == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL device pointer", op);
  if (dev < 0 || dev >= 64) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: device %d out of range", op, dev);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cublasHandle_t h;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_handles[dev] == nullptr) {
      cublasStatus_t s = cublasCreate(&g_handles[dev]);
      if (s != CUBLAS_STATUS_SUCCESS) {
        g_handles[dev] = nullptr;
        return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasCreate on device %d failed (status %d)", op, dev,
                               (int)s);
      }
    }
    h = g_handles[dev];
  }
  cublasStatus_t s = cublasSetStream(h, (cudaStream_t)stream);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasSetStream: status %d", op, (int)s);
  const float alpha = 1.0f, beta = 0.0f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, W_f16, CUDA_R_16F, (int)K, A_f16,
                   CUDA_R_16F, (int)K, &beta, out, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "%s: cublasGemmEx(F16 x F16 -> F32, M=%lld N=%lld K=%lld): status %d",
                           op, (long long)M, (long long)N, (long long)K, (int)s);
  return autoq_check_launch(op, "cublasGemmEx");
}
