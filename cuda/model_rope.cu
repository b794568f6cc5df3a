// model_rope.cu: rotary embedding of the Llama prefill (autoq_model_rope), rotate_half pairing
// (i, i + hd/2), in place on q and k with host-built F32 cos/sin tables.
#include "model_common.cuh"

namespace {

// One thread per (row, head, pair i < hd/2) over the q heads, then the k heads.
__global__ void rope_kernel(__half *q, __half *k, const int32_t *pos, const float *cos_t, const float *sin_t,
                            int64_t M, int nq, int nk, int hd) {
  const int half = hd / 2, heads = nq + nk;
  const int64_t n = M * heads * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int i = (int)(idx % half);
    const int h = (int)((idx / half) % heads);
    const int64_t m = idx / ((int64_t)half * heads);
    __half *v = h < nq ? q + (m * nq + h) * hd : k + (m * nk + (h - nq)) * hd;
    const int64_t t = (int64_t)pos[m] * half + i;
    const float c = cos_t[t], s = sin_t[t];
    const float a = h2f(v[i]), b = h2f(v[i + half]);
    v[i] = __float2half_rn(a * c - b * s);
    v[i + half] = __float2half_rn(a * s + b * c);
  }
}

} // namespace

extern "C" int autoq_model_rope(int dev, void *q_f16, void *k_f16, const int32_t *pos, const float *cos_t,
                                const float *sin_t, int64_t npos, int64_t M, int nq, int nk, int hd, void *stream) {
  const char *op = "autoq_model_rope";
  AUTOQ_TRY(check_rows(op, M, hd));
  if (hd % 2 != 0 || nq < 1 || nk < 0 || npos < 1)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: head dim %d must be even, heads q %d k %d, %lld positions", op, hd,
                           nq, nk, (long long)npos);
  if (q_f16 == nullptr || (nk > 0 && k_f16 == nullptr) || pos == nullptr || cos_t == nullptr || sin_t == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  rope_kernel<<<grid_for(M * (nq + nk) * (hd / 2)), kThreads, 0, (cudaStream_t)stream>>>(
      (__half *)q_f16, (__half *)k_f16, pos, cos_t, sin_t, M, nq, nk, hd);
  return autoq_check_launch(op, "rope_kernel");
}
