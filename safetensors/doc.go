// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, a
// JSON header of N bytes mapping tensor names to {dtype, shape, data_offsets} (plus an
// optional "__metadata__" map of strings), then the data section.
//
// Reading memory-maps the file read-only and hands out tensors that are views into the
// mapping (no copy; they become invalid after Close). Every header is validated strictly
// before anything is returned: header length and JSON, dtypes, shapes, byte sizes equal to
// shape x dtype size, offsets that tile the data section exactly (no gaps, overlaps or
// trailing bytes). Errors name the file and, where there is one, the tensor.
//
// OpenCheckpoint opens a single file or a Hugging Face sharded checkpoint
// (model.safetensors.index.json with its weight_map) behind one interface.
//
// Writing streams: Create writes the header (padded with spaces so that the data section
// starts at a multiple of 8 bytes) to a temporary file beside the target, WriteTensor
// appends each tensor's bytes in the declared order, and Close fsyncs and renames the file
// into place, so an interrupted write never replaces a good file with a partial one.
//
// Supported dtypes are F32, F16, BF16, I8, U8, I32 and I64 (compressed-tensors'
// weight_shape). Other safetensors dtypes (F64, U64, BOOL, ...) are reported as unsupported, naming the tensor. autoq stores packed int4 as U8
// (see docs/FORMAT.md).
package safetensors
