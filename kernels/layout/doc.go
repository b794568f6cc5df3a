// Package layout holds the host side of the GEMM kernels' weight formats: the re-layouts of
// quantized weights (quant.QTensor) into the byte orders the CUDA kernels read, and back.
// Pure Go without a build tag, so every layout is tested on machines without a GPU; package
// cgo uploads the results.
//
//   - W4A16 "tiled" (PackW4A16Tiled): 64-output x 16-input MMA-fragment tiles with permuted
//     F16 group scales, for cuda/gemm_w4a16_tiled.cu and every other W4A16 kernel but the
//     strip one (the stripe kernels gemm_w4a16_swapped.cu and gemm_w4a16_mma.cu read its words
//     as the MMA's A or B fragments, gemm_w4a16_dequant.cu dequantizes it), so one packed
//     weight serves every M.
//   - W4A16 "strip" (PackW4A16Strip, RepackW4A16Strip): 8-output x 128-input strips with
//     K padded to 128 and [K/group, N] scales, for cuda/gemm_w4a16_strip.cu.
//   - W8A8 (W8A8Weights): the QTensor's int8 levels as stored plus per-channel scales.
//
// Each layout is documented at the top of the .cu file that reads it (the kernel and its
// layout explained together); the functions here are its executable definition.
package layout
