// model_classifier.cu: the classifier GEMM of the Llama prefill (autoq_model_gemm_f16_f32out):
// F16 inputs, F32 logits, through cuBLAS (cublas_gemm.cuh: the FP16 baseline's call and
// handles with an F32 output).
#include "cublas_gemm.cuh"
#include "model_common.cuh"

// Same column-major mapping as autoq_gemm_f16_cublas (gemm_cublas.cu): out^T [N, M] =
// W^T-op(W as K x N, ld K) x A as K x M, ld K, with an F32 C matrix (ld N).
extern "C" int autoq_model_gemm_f16_f32out(int dev, const void *A_f16, const void *W_f16, float *out, int64_t M,
                                           int64_t N, int64_t K, void *stream) {
  return autoq_cublas_gemm_f16("autoq_model_gemm_f16_f32out", "F16 x F16 -> F32", dev, A_f16, W_f16, out, CUDA_R_32F,
                               M, N, K, stream);
}
