// gemm_w8a8_wgmma_stub.cu: the C entry points of the sm_90a W8A8 kernel when it is not built
// (CMake option AUTOQ_SM90A off: nvcc older than 12, or turned off after a failed compile of
// cuda/sm90a/gemm_w8a8_wgmma.cu). With the option on, CMake defines AUTOQ_HAVE_SM90A for this
// library and the real kernel's object provides them instead.
#include "autoq_gemm.h"
#include "common.cuh"

#ifndef AUTOQ_HAVE_SM90A
extern "C" int autoq_gemm_w8a8_wgmma_available(int) { return 0; }

extern "C" int autoq_gemm_w8a8_wgmma(int, const int8_t *, const float *, const int8_t *, const float *, const float *,
                                     void *, int64_t, int64_t, int64_t, void *) {
  return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "autoq_gemm_w8a8_wgmma: not built (the sm_90a kernel needs nvcc >= 12 "
                                                "and the CMake option AUTOQ_SM90A)");
}

extern "C" int autoq_gemm_w8a8_wgmma_i32(int, const int8_t *, const int8_t *, int32_t *, int64_t, int64_t, int64_t,
                                         void *) {
  return autoq_set_error(AUTOQ_ERR_UNSUPPORTED, "autoq_gemm_w8a8_wgmma_i32: not built (the sm_90a kernel needs nvcc "
                                                ">= 12 and the CMake option AUTOQ_SM90A)");
}
#endif
