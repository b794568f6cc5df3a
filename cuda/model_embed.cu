// model_embed.cu: the token embedding lookup of the Llama prefill (autoq_model_embed): one
// thread per output element (grid-stride), x[m, d] = f32(table[tokens[m], d]).
#include "model_common.cuh"

namespace {

__global__ void embed_kernel(const __half *table, const int32_t *tokens, int64_t M, int64_t D, int64_t vocab,
                             float *x) {
  const int64_t n = M * D;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = i / D, d = i % D;
    const int32_t t = tokens[m];
    x[i] = (t >= 0 && t < vocab) ? h2f(table[(int64_t)t * D + d]) : __int_as_float(0x7fc00000);
  }
}

} // namespace

extern "C" int autoq_model_embed(int dev, const void *table_f16, const int32_t *tokens, int64_t M, int64_t D,
                                 int64_t vocab, float *x, void *stream) {
  const char *op = "autoq_model_embed";
  AUTOQ_TRY(check_rows(op, M, D));
  if (table_f16 == nullptr || tokens == nullptr || x == nullptr || vocab < 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer or vocab %lld < 1", op, (long long)vocab);
  AUTOQ_TRY(autoq_use_device(dev, op));
  embed_kernel<<<grid_for(M * D), kThreads, 0, (cudaStream_t)stream>>>((const __half *)table_f16, tokens, M, D, vocab,
                                                                        x);
  return autoq_check_launch(op, "embed_kernel");
}
