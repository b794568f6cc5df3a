// Package export writes a quantized model in the compressed-tensors layout that vLLM and
// llm-compressor load, and reads it back.
//
// The output is a Hugging Face model directory: config.json (the model's config with a
// "quantization_config" added), model.safetensors (full-precision tensors unchanged, each
// quantized linear layer replaced by its compressed tensors) and any extra files (tokenizer,
// generation config) copied along. The directory is built in a temporary directory beside
// the target and renamed into place (internal/atomicfile.Dir), so an interrupted export
// leaves an older output untouched.
//
// Formats, per layer (see docs/EXPORT.md for the sources checked):
//   - weight-only layers (3 to 8 bits, group, channel or tensor): "pack-quantized":
//     weight_packed int32 [out, ceil(in/k)] with k = floor(32/bits) values a word (8 for
//     4 bits, 4 for 8, 10 for 3, 6 for 5, 5 for 6, 4 for 7; a value never straddles two
//     words, the unused top bits are zero), the signed levels offset by 2^(bits-1) to
//     unsigned and packed lowest bits first; weight_scale; weight_shape int32 [2]; and for
//     asymmetric schemes weight_zero_point, signed, offset and packed the same way along the
//     output dimension (int32 [ceil(out/k), groups]). This is compressed-tensors'
//     pack_to_int32 for any num_bits; which widths a runtime loads (vLLM's rules) is the
//     export target's business, not this package's.
//   - layers with int8 input activations (W8A8): "int-quantized": weight int8 [out, in],
//     weight_scale, weight_zero_point int8 when asymmetric, and input_scale [1] for static
//     activations (dynamic per-token activations have none).
//
// autoq stores asymmetric levels unsigned (u in [0, 2^b-1], zero point z in the same range);
// compressed-tensors stores them signed: q = u - 2^(b-1), zp = z - 2^(b-1), so that
// (q - zp) * scale = (u - z) * scale exactly. After the +2^(b-1) packing offset the stored
// nibbles of an asymmetric 4-bit layer are therefore autoq's own unsigned levels.
package export
