// model_rmsnorm.cu: RMSNorm of the Llama prefill (autoq_model_rmsnorm): one 256-thread block
// per row, the sum of squares by block_sum, the output rounded once to F16.
#include "model_common.cuh"

namespace {

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const float *x, const float *w, int64_t D, float eps,
                                                           __half *out) {
  __shared__ float red[kThreads / 32];
  const float *row = x + blockIdx.x * D;
  const float r = rmsnorm_inv(row, D, eps, red);
  __half *o = out + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) o[i] = rmsnorm_elem(w[i], r, row[i]);
}

} // namespace

extern "C" int autoq_model_rmsnorm(int dev, const float *x, const float *w, int64_t M, int64_t D, float eps,
                                   void *out_f16, void *stream) {
  const char *op = "autoq_model_rmsnorm";
  AUTOQ_TRY(check_rows(op, M, D));
  if (x == nullptr || w == nullptr || out_f16 == nullptr || !(eps > 0.0f))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or eps %g not positive", op, (double)eps);
  AUTOQ_TRY(autoq_use_device(dev, op));
  rmsnorm_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>(x, w, D, eps, (__half *)out_f16);
  return autoq_check_launch(op, "rmsnorm_kernel");
}
