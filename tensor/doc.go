// Package tensor is the bottom of autoq: dtypes, row-major tensors that are views over
// byte slices (for example a memory-mapped safetensors file), F16/BF16 <-> F32 conversion,
// and packed int4.
//
// A Tensor never owns a device buffer; GPU code copies to and from Tensor.Data.
//
// Packed int4 layout (DType I4): two signed 4-bit values per byte, two's complement.
// Element 2i is in the low nibble (bits 0-3) of byte i, element 2i+1 in the high nibble
// (bits 4-7). Rows are packed independently: a row of K elements takes (K+1)/2 bytes, and an
// odd K leaves the last high nibble zero.
package tensor
