// gemm_w4a16_dequant.cu: W4A16 at large M (from M = 256: the "dequant-cublas" kernel pair):
// dequantize the packed weight (layout.PackW4A16Tiled) into an F16 [N, K] row-major scratch
// owned by the caller and reused across layers, then cuBLAS FP16 (autoq_gemm_f16_cublas) and,
// with a bias, autoq_model_bias_add. At M >= 256 the GEMM is compute-bound and cuBLAS's
// tensor-core tiles beat our mma.sync kernels (runs 2-6: the tiled kernel 0.36x at M = 1024);
// the dequantization moves N*K/2 bytes in and 2*N*K out, once per call.
//
// Wd[n, k] = f16(f16(u - z) * scale), the other W4A16 kernels' weight bit for bit
// (w4_dequant_word), so the result differs from theirs only by cuBLAS's summation order and,
// with a bias, one more F16 rounding (the bias is added to the F16 GEMM output).
//
// Prediction (H100, before any run): 4096x4096 at M = 1024: cuBLAS ~47 us (run 1) plus the
// dequantization (8 MB read, 32 MB written: ~14 us at 2.9 TB/s) -> ~0.77x of FP16; at M = 4096
// ~0.93x; it only ever approaches 1x, but replaces 0.36x.
#include <algorithm>

#include "autoq_gemm.h"
#include "autoq_model.h"
#include "gemm_w4a16_stripes.cuh"

namespace {

// One thread per 16-byte lane vector of a 64n x 16k tile: 32 nibbles -> 16 half2 stores.
template <bool ASYM>
__global__ void __launch_bounds__(256) w4a16_dequant_kernel(const uint4 *__restrict__ W, const __half *__restrict__ scales,
                                                            const __half *__restrict__ zeros, __half *__restrict__ out,
                                                            int N, int K, int group) {
  const int64_t nvec = (int64_t)N * K / 32, ktiles = K / 16, nstrips = N / 64;
  for (int64_t v = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; v < nvec; v += (int64_t)gridDim.x * blockDim.x) {
    const int64_t tile = v >> 5;
    const int lane = (int)(v & 31), g = lane >> 2;
    const int64_t nt = tile / ktiles, kt = tile % ktiles;
    const int64_t gi = kt * 16 / group;
    const uint4 wv = __ldg(W + v);
    const uint4 sc = __ldg(reinterpret_cast<const uint4 *>(scales + (gi * nstrips + nt) * 64 + g * 8));
    uint4 zr = make_uint4(0, 0, 0, 0);
    if (ASYM) zr = __ldg(reinterpret_cast<const uint4 *>(zeros + (gi * nstrips + nt) * 64 + g * 8));
    const uint32_t ws[4] = {wv.x, wv.y, wv.z, wv.w}, scw[4] = {sc.x, sc.y, sc.z, sc.w};
    const uint32_t zw[4] = {zr.x, zr.y, zr.z, zr.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
      uint32_t r[4];
      w4_dequant_word<ASYM>(ws[j], scw[j], zw[j], r);
#pragma unroll
      for (int q = 0; q < 4; q++) {
        int n, k;
        w4_word_coords(lane, j, q, n, k);
        *reinterpret_cast<uint32_t *>(out + (nt * 64 + n) * (int64_t)K + kt * 16 + k) = r[q];
      }
    }
  }
}

} // namespace

extern "C" int autoq_w4a16_dequant_tiled(int dev, const void *W_packed, const void *scales_f16, const void *zeros_f16,
                                         void *out_f16, int64_t N, int64_t K, int64_t group, void *stream) {
  const char *op = "autoq_w4a16_dequant_tiled";
  AUTOQ_TRY(w4a16_check_shape(op, 1, N, K, group));
  if ((int64_t)N * K >= (1LL << 40))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: shape N=%lld K=%lld too large", op, (long long)N, (long long)K);
  AUTOQ_TRY(w4a16_check_pointers(op, out_f16, W_packed, scales_f16, zeros_f16, out_f16));
  AUTOQ_TRY(autoq_use_device(dev, op));
  const int64_t nvec = N * K / 32;
  const unsigned blocks = (unsigned)std::min<int64_t>((nvec + 255) / 256, (int64_t)gemm_sm_count(dev) * 16);
  cudaStream_t st = (cudaStream_t)stream;
  if (zeros_f16 != nullptr)
    w4a16_dequant_kernel<true><<<blocks, 256, 0, st>>>((const uint4 *)W_packed, (const __half *)scales_f16,
                                                       (const __half *)zeros_f16, (__half *)out_f16, (int)N, (int)K,
                                                       (int)group);
  else
    w4a16_dequant_kernel<false><<<blocks, 256, 0, st>>>((const uint4 *)W_packed, (const __half *)scales_f16, nullptr,
                                                        (__half *)out_f16, (int)N, (int)K, (int)group);
  return autoq_check_launch(op, "w4a16_dequant_kernel");
}

extern "C" int autoq_gemm_w4a16_dequant_cublas(int dev, const void *A_f16, const void *W_packed, const void *scales_f16,
                                               const void *zeros_f16, const float *bias, void *out_f16, int64_t M,
                                               int64_t N, int64_t K, int64_t group, void *scratch_f16,
                                               size_t scratch_bytes, void *stream) {
  const char *op = "autoq_gemm_w4a16_dequant_cublas";
  if (scratch_f16 == nullptr || scratch_bytes < (size_t)N * K * 2)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: N=%lld K=%lld needs an F16 scratch of %lld bytes (got %zu)", op,
                           (long long)N, (long long)K, (long long)(N * K * 2), scratch_bytes);
  AUTOQ_TRY(autoq_w4a16_dequant_tiled(dev, W_packed, scales_f16, zeros_f16, scratch_f16, N, K, group, stream));
  AUTOQ_TRY(autoq_gemm_f16_cublas(dev, A_f16, scratch_f16, out_f16, M, N, K, stream));
  if (bias == nullptr) return AUTOQ_OK;
  return autoq_model_bias_add(dev, out_f16, bias, M, N, stream);
}
