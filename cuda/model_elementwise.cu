// model_elementwise.cu: the element-wise kernels of the Llama prefill (autoq_model.h): SwiGLU,
// the residual add into the F32 stream and the bias add of the F16 fallback GEMM. Grid-stride
// loops over elements, F32 arithmetic, one rounding to F16 on store.
#include "model_common.cuh"

namespace {

__global__ void swiglu_kernel(const __half *gate, const __half *up, __half *out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    out[i] = swiglu_elem(h2f(gate[i]), h2f(up[i]));
  }
}

__global__ void residual_kernel(float *x, const __half *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] += h2f(y[i]);
}

__global__ void bias_kernel(__half *out, const float *bias, int64_t M, int64_t N) {
  const int64_t n = M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __float2half_rn(h2f(out[i]) + bias[i % N]);
}

} // namespace

extern "C" int autoq_model_swiglu(int dev, const void *gate_f16, const void *up_f16, void *out_f16, int64_t n,
                                  void *stream) {
  const char *op = "autoq_model_swiglu";
  if (n < 1 || gate_f16 == nullptr || up_f16 == nullptr || out_f16 == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or n = %lld", op, (long long)n);
  AUTOQ_TRY(autoq_use_device(dev, op));
  swiglu_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>((const __half *)gate_f16, (const __half *)up_f16,
                                                                     (__half *)out_f16, n);
  return autoq_check_launch(op, "swiglu_kernel");
}

extern "C" int autoq_model_residual_add(int dev, float *x, const void *y_f16, int64_t n, void *stream) {
  const char *op = "autoq_model_residual_add";
  if (n < 1 || x == nullptr || y_f16 == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or n = %lld", op, (long long)n);
  AUTOQ_TRY(autoq_use_device(dev, op));
  residual_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, (const __half *)y_f16, n);
  return autoq_check_launch(op, "residual_kernel");
}

extern "C" int autoq_model_bias_add(int dev, void *out_f16, const float *bias, int64_t M, int64_t N, void *stream) {
  const char *op = "autoq_model_bias_add";
  AUTOQ_TRY(check_rows(op, M, N));
  if (out_f16 == nullptr || bias == nullptr) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  bias_kernel<<<grid_for(M * N), kThreads, 0, (cudaStream_t)stream>>>((__half *)out_f16, bias, M, N);
  return autoq_check_launch(op, "bias_kernel");
}
