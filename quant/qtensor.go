package quant

// QTensor is a quantized weight matrix [Rows (outputs), Cols (inputs)].
//
// Data holds the integer levels, row-major, Bits bits each: every row is a little-endian
// bit stream in which element c occupies bits [c*Bits, (c+1)*Bits) (bit k of the stream is
// bit k%8 of byte k/8), padded with zero bits to a whole byte, so a row takes
// RowBytes(Bits, Cols) = ceil(Cols*Bits/8) bytes. A level is stored as its low Bits bits:
// two's complement for symmetric schemes ([-2^(b-1), 2^(b-1)-1]), unsigned for asymmetric
// ones ([0, 2^b-1]). The one rule gives the familiar layouts as special cases:
//   - 8 bits: one byte per level, int8 (symmetric) or uint8 (asymmetric);
//   - 4 bits: two levels per byte, element 2i in the low nibble (tensor.I4's layout), rows
//     padded to (Cols+1)/2 bytes;
//   - 3, 5, 6, 7 bits: levels straddle bytes; eight consecutive levels starting at a
//     multiple of 8 fill exactly Bits bytes (3 bytes for 3-bit levels, 6 for 6-bit).
//
// Why packed rather than one byte per level: the storage is then exactly Bits bits per
// weight, which is what the planner's cost (Recipe.Bits) and the quantize report's bits/w
// count, and a 3-bit layer takes 3/8 of an 8-bit one in memory and on disk; the 4- and
// 8-bit bytes stay what they were (files and GPU kernels unchanged); and the eight-level
// chunks keep the CPU loops and the GPU quantize kernels (which already work on 8-element
// chunks) simple: a chunk is one 64-bit word of Bits bytes.
//
// Scales has Rows*Groups entries ([Rows, Groups] row-major; PerTensor: one entry) and Zeros,
// for asymmetric schemes only, the same shape; nil when symmetric.
//
// GIdx, when not nil (PerGroup only), gives the scale group of every column (Cols entries,
// each group holding exactly GroupSize columns): GPTQ with activation order and groups
// formed in that order (compressed-tensors' actorder "group" stores it as weight_g_idx).
// nil means the contiguous groups: column c is in group c / GroupSize.
type QTensor struct {
	Name   string
	Scheme Scheme
	Rows   int
	Cols   int
	Groups int // scale groups per row (1 for PerTensor/PerChannel)
	Data   []byte
	Scales []float32
	Zeros  []int32
	GIdx   []int32
}
