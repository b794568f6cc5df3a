// Package quantfile is autoq's own quantized checkpoint layout (`autoq quantize --out`,
// docs/FORMAT.md): safetensors with each quantized weight stored as its integer levels,
// scales and zero points, and the scheme in the metadata. It sits above quant (whose
// QTensor it stores) and checkpoint (whose tensor sources it reads).
package quantfile

// OutputKind marks a directory in this layout (internal/atomicfile's output marker).
const OutputKind = "quantized checkpoint"
