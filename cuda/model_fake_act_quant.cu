// model_fake_act_quant.cu: fake per-token int8 activation quantization (autoq_model_fake_act_quant),
// the input of W8A8 layers whose shape the W8A8 kernel cannot take: one 256-thread block per
// row, amax by block_max, then autoq_act_quant_per_token's exact arithmetic (IEEE division,
// rint, clamp to +-127) and f16(q * scale).
#include "model_common.cuh"

namespace {

__global__ void __launch_bounds__(kThreads) fake_act_quant_kernel(const __half *x, int64_t K, __half *out) {
  __shared__ float red[kThreads / 32];
  const __half *row = x + blockIdx.x * K;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < K; i += kThreads) amax = fmaxf(amax, fabsf(h2f(row[i])));
  amax = block_max(amax, red);
  const float scale = amax == 0.0f ? 1.0f : __fdiv_rn(amax, 127.0f);
  __half *o = out + blockIdx.x * K;
  for (int64_t i = threadIdx.x; i < K; i += kThreads) {
    float q = rintf(__fdiv_rn(h2f(row[i]), scale));
    q = fminf(fmaxf(q, -127.0f), 127.0f);
    o[i] = __float2half_rn(__fmul_rn(q, scale));
  }
}

} // namespace

extern "C" int autoq_model_fake_act_quant(int dev, const void *x_f16, int64_t M, int64_t K, void *out_f16,
                                          void *stream) {
  const char *op = "autoq_model_fake_act_quant";
  AUTOQ_TRY(check_rows(op, M, K));
  if (x_f16 == nullptr || out_f16 == nullptr) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  fake_act_quant_kernel<<<(unsigned)M, kThreads, 0, (cudaStream_t)stream>>>((const __half *)x_f16, K,
                                                                            (__half *)out_f16);
  return autoq_check_launch(op, "fake_act_quant_kernel");
}
