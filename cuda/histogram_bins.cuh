// histogram_bins.cuh: calib's bin rule on float32 bits (calib.ExpFor, calib.BinIndex), shared
// by the two histogram kernels (histogram_twopass.cu, histogram_onepass.cu) and compiled for
// the host by cgo/hostcheck_test.go, which checks it against package calib. Inline functions:
// every .cu that includes this gets its own copy.
#pragma once

#include "common.cuh"

// calib.ExpFor on the bits of a finite non-zero magnitude.
__device__ __forceinline__ int exp_for_bits(uint32_t b) {
  int e = (int)(b >> 23);
  if (e == 0) return (32 - __clz((int)b)) - 1 - 149 - 10; // bits.Len32(b) - 1 - 149 - 10
  return e - 127 - 10;
}

// calib.BinIndex for the finite magnitude bits u and exponent exp.
__device__ __forceinline__ uint32_t bin_index(uint32_t u, int exp) {
  int e = (int)(u >> 23);
  uint64_t sig = u & 0x7fffffu;
  if (e != 0)
    sig |= 1u << 23;
  else
    e = 1;
  const int shift = exp + 150 - e;
  uint64_t b;
  if (shift >= 0)
    b = shift >= 64 ? 0 : sig >> shift;
  else
    b = -shift >= 40 ? (uint64_t)AUTOQ_HIST_BINS : sig << (-shift); // cannot happen for valid exp
  return b < AUTOQ_HIST_BINS ? (uint32_t)b : AUTOQ_HIST_BINS - 1;
}
