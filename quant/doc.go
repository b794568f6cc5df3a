// Package quant is autoq's CPU reference for quantization: schemes, scale search,
// quantize/dequantize, error metrics and reference GEMMs. Every CUDA kernel is tested
// against this package, and repeats its float32 arithmetic bit for bit, so each operation
// here is specified exactly (order, precision, rounding) in the comments.
//
// # Integer ranges
//
// A weight matrix is [rows = outputs, cols = inputs]. Scales are shared per tensor, per
// output row (channel) or per group of GroupSize consecutive inputs of a row.
//
//   - Weights take b = 3 to 8 bits (MinBits, MaxBits; scheme.go says why).
//   - Symmetric b-bit: levels in the full two's-complement range [-2^(b-1), 2^(b-1)-1]
//     ([-4, 3] for 3 bits, [-8, 7] for int4, [-32, 31] for 6 bits, [-128, 127] for int8)
//     with scale = amax / (2^(b-1) - 0.5) (amax/3.5, amax/7.5, amax/31.5, amax/127.5). +amax lands on 2^(b-1)-0.5 and saturates to the top level,
//     -amax on the bottom level: all 2^b levels are used and the error of every value inside
//     [-amax, amax] stays within half a step (the compressed-tensors/GPTQ convention; the
//     alternative [-7, 7] with amax/7 wastes one of int4's sixteen levels).
//   - Asymmetric b-bit: unsigned levels [0, 2^b-1], scale = (hi-lo)/(2^b-1) over a range
//     widened to contain 0, zero point = rne(-lo/scale) clamped to the range, so 0 is
//     exactly representable (zero padding and ReLU zeros stay exact).
//   - Activations (W8A8): symmetric int8 in [-127, 127], scale = amax/127, so the range is
//     symmetric and int8 products never meet the -128 corner.
//
// An all-zero group gets scale 1 and the zero point that maps 0 to 0, so it dequantizes to
// exact zeros and never divides by zero.
//
// # Rounding and saturation
//
// level = clamp(rne(x/scale) + zero, QRange): an IEEE float32 division (not a multiply by a
// reciprocal, which rounds differently), round half to even (CUDA's rintf; unbiased, so
// ties do not push a whole tensor's error one way), then saturation to the range, since
// clipped search ranges (percentile, mse) deliberately leave outliers beyond the top level.
// Dequantization is float32(level-zero)*scale. Every float operation is rounded on its own
// (no fused multiply-add): see the explicit conversions in mse.go and gemm.go.
//
// # Storage
//
// QTensor stores each row as a little-endian bit stream of b-bit levels padded to a byte
// (qtensor.go): 8-bit levels one byte each (int8 for symmetric, uint8 for asymmetric),
// 4-bit levels two per byte as tensor.I4 (element 2i in the low nibble), 3-, 5-, 6- and
// 7-bit levels straddling bytes; two's complement fields for symmetric and unsigned ones for
// asymmetric schemes. PackLevels and UnpackLevels convert, RowBytes gives a row's size.
//
// # Checkpoint tensors
//
// QuantizeTensor, SearchParamsTensor, QuantizeTensorWithParams and GroupRangesTensor take a
// 2-D F32/F16/BF16 *tensor.Tensor (often a view of a mapped file) and give the bits of
// their []float32 counterparts on the converted values while converting one row at a time,
// so quantizing a half-precision weight needs no float32 copy of it (the per-tensor
// percentile and mse searches and registered searches convert it once). CompareTensor
// measures the error the same way, and QuantizeTensorWithError does both in one pass.
//
// # Scale search
//
// SearchParams offers max (group min/max), percentile and mse (a grid of 80 clipping
// ratios minimising the reconstruction error); see its comment and mse.go for the exact
// definitions. Results are deterministic: row loops run on GOMAXPROCS goroutines, but each
// output depends only on its own inputs and fixed evaluation orders.
package quant
