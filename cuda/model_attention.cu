// model_attention.cu: causal grouped-query attention for prefill (autoq_model_attention).
//
// Thread mapping: one block of 4 warps per (query tile of 16 positions, query head,
// sequence) = grid (ceil(max_len/16), nq, nseq); tiles past a sequence's end exit. Warp w
// owns queries 4w..4w+3 of the tile. The tile's queries are widened to F32 in shared memory;
// keys and values stream through shared memory in tiles of 32 positions (F16; the key rows
// padded to hd+2 halves, an odd number of 32-bit words, so the 32 lanes reading 32
// different key rows hit 32 different banks).
//
// Per key tile and query, lane j scores key j (dot product in F32, divided by sqrt(hd) as
// the CPU runner does), the warp updates the running max m, the running sum l and rescales
// its output (online softmax: o = o * exp(m_old - m_new) + sum_j exp(s_j - m_new) v_j), and
// lane l accumulates output dims l, l+32, ... (hd <= 256: at most 8 per lane). Masked keys
// (s > t) get probability 0. The result is o / l rounded to F16.
#include "autoq_model.h"
#include "common.cuh"

namespace {

constexpr int kWarps = 4, kQPW = 4, kBQ = kWarps * kQPW, kBK = 32, kMaxHD = 256, kDPL = kMaxHD / 32;

size_t smem_bytes(int hd) {
  return (size_t)kBQ * hd * sizeof(float) + (size_t)kBK * (hd + 2) * sizeof(__half) +
         (size_t)kBK * hd * sizeof(__half);
}

__global__ void __launch_bounds__(kWarps * 32) attention_kernel(const __half *q, const __half *k, const __half *v,
                                                                const int32_t *offsets, int nq, int nk, int hd,
                                                                float scale, __half *out) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int b = blockIdx.z, h = blockIdx.y;
  const int base = offsets[b], len = offsets[b + 1] - base;
  const int q0 = blockIdx.x * kBQ;
  if (q0 >= len) return;
  const int kvh = h / (nq / nk);
  const int64_t D = (int64_t)nq * hd, KV = (int64_t)nk * hd;
  const int ks = hd + 2;
  float *qs = (float *)smem;                   // [kBQ][hd]
  __half *Ks = (__half *)(qs + kBQ * hd);      // [kBK][ks]
  __half *Vs = Ks + kBK * ks;                  // [kBK][hd]
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  for (int i = tid; i < kBQ * hd; i += kWarps * 32) {
    const int r = i / hd, d = i % hd, t = q0 + r;
    qs[i] = t < len ? __half2float(q[(base + t) * D + (int64_t)h * hd + d]) : 0.0f;
  }
  float m_run[kQPW], l_run[kQPW], o[kQPW][kDPL];
#pragma unroll
  for (int qi = 0; qi < kQPW; qi++) {
    m_run[qi] = -INFINITY;
    l_run[qi] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDPL; i++) o[qi][i] = 0.0f;
  }
  const int qend = min(q0 + kBQ, len); // keys 0..qend-1 are visible to some query of the tile
  for (int k0 = 0; k0 < qend; k0 += kBK) {
    __syncthreads(); // the previous tile is consumed (and qs written, on the first pass)
    for (int i = tid; i < kBK * hd; i += kWarps * 32) {
      const int j = i / hd, d = i % hd, s = k0 + j;
      __half kv = __float2half_rn(0.0f), vv = kv;
      if (s < len) {
        const int64_t off = (base + s) * KV + (int64_t)kvh * hd + d;
        kv = k[off];
        vv = v[off];
      }
      Ks[j * ks + d] = kv;
      Vs[j * hd + d] = vv;
    }
    __syncthreads();
#pragma unroll
    for (int qi = 0; qi < kQPW; qi++) {
      const int r = warp * kQPW + qi, t = q0 + r;
      if (t >= len || k0 > t) continue; // warp-uniform
      const int s = k0 + lane;
      float sc = -INFINITY;
      if (s <= t) {
        const __half2 *kr = (const __half2 *)(Ks + lane * ks);
        const float2 *qr = (const float2 *)(qs + r * hd);
        float dot = 0.0f;
        for (int d2 = 0; d2 < hd / 2; d2++) {
          const float2 kk = __half22float2(kr[d2]);
          const float2 qq = qr[d2];
          dot += qq.x * kk.x;
          dot += qq.y * kk.y;
        }
        sc = dot / scale;
      }
      float mx = sc;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m_run[qi], mx); // finite: key k0 <= t is visible
      const float p = s <= t ? expf(sc - m_new) : 0.0f;
      const float corr = expf(m_run[qi] - m_new); // 0 on the first tile (m_run = -inf)
      float psum = p;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) psum += __shfl_xor_sync(0xffffffffu, psum, off);
      l_run[qi] = l_run[qi] * corr + psum;
      m_run[qi] = m_new;
#pragma unroll
      for (int i = 0; i < kDPL; i++) o[qi][i] *= corr;
      const int nvis = min(kBK, t - k0 + 1);
      for (int j = 0; j < nvis; j++) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        const __half *vr = Vs + j * hd;
#pragma unroll
        for (int i = 0; i < kDPL; i++) {
          const int d = lane + 32 * i;
          if (d < hd) o[qi][i] += pj * __half2float(vr[d]);
        }
      }
    }
  }
#pragma unroll
  for (int qi = 0; qi < kQPW; qi++) {
    const int t = q0 + warp * kQPW + qi;
    if (t >= len) continue;
    __half *orow = out + (base + t) * D + (int64_t)h * hd;
    const float inv = 1.0f / l_run[qi];
#pragma unroll
    for (int i = 0; i < kDPL; i++) {
      const int d = lane + 32 * i;
      if (d < hd) orow[d] = __float2half_rn(o[qi][i] * inv);
    }
  }
}

} // namespace

extern "C" int autoq_model_attention(int dev, const void *q_f16, const void *k_f16, const void *v_f16,
                                     const int32_t *offsets, int nseq, int max_len, int nq, int nk, int hd,
                                     void *out_f16, void *stream) {
  const char *op = "autoq_model_attention";
  if (nseq < 1 || nseq > 65535 || max_len < 1 || nq < 1 || nk < 1 || nq % nk != 0 || nq > 65535 || hd < 2 ||
      hd % 2 != 0 || hd > kMaxHD)
    return autoq_set_error(AUTOQ_ERR_INVALID,
                           "%s: %d sequences (1..65535), max length %d, heads q %d k %d (q a multiple of k), head "
                           "dim %d (even, <= %d)",
                           op, nseq, max_len, nq, nk, hd, kMaxHD);
  if (q_f16 == nullptr || k_f16 == nullptr || v_f16 == nullptr || offsets == nullptr || out_f16 == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: NULL pointer", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  const size_t smem = smem_bytes(hd);
  if (smem > 48 * 1024)
    AUTOQ_CUDA(op, cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  dim3 grid((unsigned)((max_len + kBQ - 1) / kBQ), (unsigned)nq, (unsigned)nseq);
  attention_kernel<<<grid, kWarps * 32, smem, (cudaStream_t)stream>>>(
      (const __half *)q_f16, (const __half *)k_f16, (const __half *)v_f16, offsets, nq, nk, hd,
      sqrtf((float)hd), (__half *)out_f16);
  return autoq_check_launch(op, "attention_kernel");
}
