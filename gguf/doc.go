// Package gguf writes and reads GGUF v3 files, the format of llama.cpp and Ollama, and
// holds the ggml block formats autoq exports to.
//
// # Container
//
// Create/Writer stream a file (header first, then each tensor padded to general.alignment,
// 32 by default) to a temporary name that Close renames into place. Open/Read parse a file
// strictly: every error names the file, the key or tensor, and the problem. Shapes are
// row-major [rows, cols] here; the file stores ggml's ne (reversed).
//
// # Block formats
//
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32 along a row) and the k-quants Q4_K and Q6_K
// (super-blocks of 256) are held unpacked as a Grid (every block parameter exactly as the
// block stores it: F16 d/m, 6-bit or int8 sub-block scales) plus one code per element
// (Quantized). Encode/Unpack convert to and from ggml's byte layout; Cell.Value is exactly
// llama.cpp's dequantize_row_* (package llamacpp checks both against ggml itself).
//
// # Quantizing
//
//   - From autoq's levels (FromLevels): 8-bit symmetric groups of 32 are Q8_0, 4-bit Q4_0
//     (symmetric) or Q4_1 (asymmetric), 5-bit Q5_0/Q5_1. RoundScales rounds autoq's scales
//     to the stored F16 before the levels are chosen, so the file decodes to autoq's
//     weights bit for bit (asymmetric: within ½ulp_F16(zero·scale), see RoundScales).
//   - On a fixed grid (ChooseGrid, GridFromParams): choose the grid first (llama.cpp's
//     search, optionally importance-weighted), then round each weight onto it
//     (Grid.RoundNearest, or Cell.Nearest one column at a time for GPTQ-style algorithms).
//   - RefQuantize restates llama.cpp's own quantizers (quantize_row_*_ref, and the
//     imatrix variants), byte for byte, for comparisons.
//
// # Models
//
// WriteLlama writes a Llama-family checkpoint for llama.cpp's llama architecture with
// per-tensor types, undoing Hugging Face's RoPE row permutation of q/k; LlamaConfig and
// LlamaTensors read such a file back under autoq's names.
package gguf
