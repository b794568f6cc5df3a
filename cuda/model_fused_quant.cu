// model_fused_quant.cu: the prefill kernels that produce a W8A8 layer's input, fused with its
// per-token int8 quantization (issue 18: the runner ran RMSNorm / SwiGLU, then
// autoq_act_quant_per_token re-read the F16 rows). One 256-thread block per row: the F16
// output exactly as autoq_model_rmsnorm / autoq_model_swiglu write it (the same element
// helpers, model_common.cuh), its absmax over the F16 values, scale = amax / 127 (IEEE
// division; 1 when amax == 0) and q = clamp(rint(x / scale), -127, 127): bit for bit the
// unfused pair (tested on the GPU against it). The F16 row stays written (observers and
// non-W8A8 consumers read it); each thread re-reads only the elements it wrote.
#include "model_common.cuh"

namespace {

// Row absmax of the F16 values o[i] this thread wrote, then the scale, then the levels.
__device__ __forceinline__ void quantize_row(const __half *o, int64_t D, float amax, float *red, int8_t *q,
                                             float *scale_out) {
  amax = block_max(amax, red);
  const float scale = amax == 0.0f ? 1.0f : __fdiv_rn(amax, 127.0f);
  if (threadIdx.x == 0) *scale_out = scale;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) q[i] = autoq_act_quant1(h2f(o[i]), scale);
}

__global__ void __launch_bounds__(kThreads) rmsnorm_quant_kernel(const float *x, const float *w, int64_t D, float eps,
                                                                 __half *out, int8_t *q, float *scales) {
  __shared__ float red[kThreads / 32];
  const float *row = x + blockIdx.x * D;
  const float r = rmsnorm_inv(row, D, eps, red);
  __half *o = out + blockIdx.x * D;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) {
    const __half v = rmsnorm_elem(w[i], r, row[i]);
    o[i] = v;
    amax = fmaxf(amax, fabsf(h2f(v)));
  }
  quantize_row(o, D, amax, red, q + blockIdx.x * D, scales + blockIdx.x);
}

__global__ void __launch_bounds__(kThreads) swiglu_quant_kernel(const __half *gate, const __half *up, int64_t H,
                                                                __half *out, int8_t *q, float *scales) {
  __shared__ float red[kThreads / 32];
  const int64_t base = blockIdx.x * H;
  __half *o = out + base;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += kThreads) {
    const __half v = swiglu_elem(h2f(gate[base + i]), h2f(up[base + i]));
    o[i] = v;
    amax = fmaxf(amax, fabsf(h2f(v)));
  }
  quantize_row(o, H, amax, red, q + base, scales + blockIdx.x);
}

} // namespace

extern "C" int autoq_model_rmsnorm_quant(int dev, const float *x, const float *w, int64_t M, int64_t D, float eps,
                                         void *out_f16, int8_t *q, float *scales, void *stream) {
  const char *op = "autoq_model_rmsnorm_quant";
  AUTOQ_TRY(check_rows(op, M, D));
  if (x == nullptr || w == nullptr || out_f16 == nullptr || q == nullptr || scales == nullptr || !(eps > 0.0f))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or eps %g not positive", op, (double)eps);
  AUTOQ_TRY(autoq_use_device(dev, op));
  rmsnorm_quant_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>(x, w, D, eps, (__half *)out_f16, q, scales);
  return autoq_check_launch(op, "rmsnorm_quant_kernel");
}

extern "C" int autoq_model_swiglu_quant(int dev, const void *gate_f16, const void *up_f16, int64_t M, int64_t H,
                                        void *out_f16, int8_t *q, float *scales, void *stream) {
  const char *op = "autoq_model_swiglu_quant";
  AUTOQ_TRY(check_rows(op, M, H));
  if (gate_f16 == nullptr || up_f16 == nullptr || out_f16 == nullptr || q == nullptr || scales == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  swiglu_quant_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>(
      (const __half *)gate_f16, (const __half *)up_f16, H, (__half *)out_f16, q, scales);
  return autoq_check_launch(op, "swiglu_quant_kernel");
}
