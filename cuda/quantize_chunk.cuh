// quantize_chunk.cuh: the per-chunk arithmetic of the vectorised quantize kernels
// (quantize_persistent.cu, quantize_batched.cu): eight values a chunk, loaded as 16-byte
// words, the non-finite test on the raw bits, rint(x / scale) without a division away from ties
// (rint_div8) and the branch-free saturating level (level_bits). Bit-exact with quant's
// QuantizeValue; host-checked (cgo/hostcheck_test.go cuts it from here).
#pragma once

#include "common.cuh"

namespace {

// q = n / d for n < 2^31 (Granlund-Montgomery: m = floor(2^32 (2^s - d) / d) + 1, s =
// ceil(log2 d); q = (umulhi(n, m) + n) >> s, no overflow because n < 2^31).
struct FastDiv {
  uint32_t d, m;
  int s;
};

static inline FastDiv make_fastdiv(uint32_t d) {
  int s = 0;
  while ((1ull << s) < d) s++;
  uint64_t m = ((1ull << 32) * ((1ull << s) - d)) / d + 1;
  return FastDiv{d, (uint32_t)m, s};
}

static __device__ __forceinline__ uint32_t fdiv(uint32_t n, const FastDiv &f) { return (__umulhi(n, f.m) + n) >> f.s; }


// Raw 16-byte words of one chunk (F32 chunks are two vectors).
template <int DT>
struct Raw {
  uint4 v[DT == AUTOQ_F32 ? 2 : 1];
};

template <int DT>
__device__ __forceinline__ void load_chunk(const void *__restrict__ w, uint32_t k, Raw<DT> &r) {
  const uint4 *p = (const uint4 *)w;
  if (DT == AUTOQ_F32) {
    r.v[0] = __ldg(p + 2 * (size_t)k);
    r.v[1] = __ldg(p + 2 * (size_t)k + 1);
  } else {
    r.v[0] = __ldg(p + k);
  }
}

// True if any element of the chunk is NaN or Inf (exponent field all ones).
template <int DT>
__device__ __forceinline__ bool chunk_nonfinite(const Raw<DT> &r) {
  bool bad = false;
  if (DT == AUTOQ_F32) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const uint32_t w[4] = {r.v[h].x, r.v[h].y, r.v[h].z, r.v[h].w};
#pragma unroll
      for (int i = 0; i < 4; i++) bad |= (w[i] & 0x7f800000u) == 0x7f800000u;
    }
  } else {
    const uint32_t e = DT == AUTOQ_F16 ? 0x7c00u : 0x7f80u;
    const uint32_t w[4] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w};
#pragma unroll
    for (int i = 0; i < 4; i++) bad |= ((w[i] & e) == e) | ((w[i] & (e << 16)) == (e << 16));
  }
  return bad;
}

template <int DT>
__device__ __forceinline__ void chunk_values(const Raw<DT> &r, float (&x)[8]) {
  if (DT == AUTOQ_F32) {
    const uint32_t w[8] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w, r.v[1].x, r.v[1].y, r.v[1].z, r.v[1].w};
#pragma unroll
    for (int i = 0; i < 8; i++) x[i] = __uint_as_float(w[i]);
  } else {
    const uint32_t w[4] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const uint16_t a = (uint16_t)(w[i] & 0xffffu), b = (uint16_t)(w[i] >> 16);
      x[2 * i] = DT == AUTOQ_F16 ? autoq_f16_to_f32(a) : autoq_bf16_to_f32(a);
      x[2 * i + 1] = DT == AUTOQ_F16 ? autoq_f16_to_f32(b) : autoq_bf16_to_f32(b);
    }
  }
}

// rint(x / scale) with float32 IEEE division, bit for bit, mostly without dividing, from
// inv = RN(1/scale) (used only when scale and 1/scale are normal). With p = RN(x * inv),
// p = (x/scale)(1 + d), |d| <= 2^-23 + 2^-48, and |RN(x/scale) - x/scale| <= 2^-24 |x/scale|,
// so |RN(x/scale) - p| < 2^-21 |p|. When p is farther than 2^-20 |p| from every half-integer
// (n - p and 0.5 - |n - p| are exact here), RN(x/scale) lies in the same open interval
// (n - 0.5, n + 0.5) as p, and rint gives n for both. Otherwise (near a tie, |p| >= 2^19,
// NaN, Inf, underflowed or overflowed p) the exact division decides. Checked against a
// float64 reference (exact: double rounding of a quotient from binary64 to binary32 is
// innocuous) on 2e8 random and near-tie pairs.
//
// rint_div8 sets r[j] = rint(x[j] / scale) for the 8 values of a chunk, exact division only for a
// chunk with a value near a tie (or a scale outside the fast range): no branch per element.
__device__ __forceinline__ void rint_div8(const float (&x)[8], float scale, float (&r)[8]) {
  const float as = fabsf(scale);
  bool slow = !(as >= 0x1p-125f && as <= 0x1p125f); // scale and 1/scale normal (and not NaN)
  if (!slow) {
    const float inv = __frcp_rn(scale);
#pragma unroll
    for (int j = 0; j < 8; j++) {
      const float p = __fmul_rn(x[j], inv);
      const float n = rintf(p);
      const float f = __fsub_rn(p, n);
      slow |= !(__fsub_rn(0.5f, fabsf(f)) > __fmul_rn(fabsf(p), 0x1p-20f));
      r[j] = n;
    }
  }
  if (slow) {
#pragma unroll
    for (int j = 0; j < 8; j++) r[j] = rintf(__fdiv_rn(x[j], scale));
  }
}

// autoq_quantize_value with the range of `bits` (a constant in the 4- and 8-bit
// instantiations); symmetric schemes skip the "+ 0" (rint then + 0.0f changes only the sign
// of a zero, which the integer conversion drops, and keeps NaN a NaN: the same integer
// either way). Returns the stored field.
//
// Branch-free (issue 18: the compare-and-select chain compiled to branches): the saturating
// conversion cvt.rzi.s32.f32 (__float2int_rz: NaN -> 0, out-of-range -> INT_MIN/INT_MAX) then
// an integer clamp (IMNMX). Equal to the clamp-then-convert of autoq_quantize_value for every
// float: q is an integer (rint plus an integer zero) or +-Inf or NaN; an integer below qlo or
// -Inf converts to at most qlo - 1 and clamps to qlo (above qhi alike); NaN gives 0 both ways
// (0 lies in every range). Host-checked against quant.Scheme.QuantizeValue.
template <bool SYM>
__device__ __forceinline__ uint32_t level_bits(float q, int32_t zero, int bits) {
  const int32_t qlo = SYM ? -(1 << (bits - 1)) : 0;
  const int32_t qhi = SYM ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  if (!SYM) q = __fadd_rn(q, (float)zero);
  return autoq_level_field(min(max(__float2int_rz(q), qlo), qhi), bits);
}

} // namespace
