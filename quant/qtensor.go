package quant

// QTensor is a quantized weight matrix [Rows (outputs), Cols (inputs)].
//
// Data holds the integer levels, row-major, in the narrowest storage the scheme allows:
//   - 8-bit symmetric: int8 levels in [-128,127], one byte each;
//   - 8-bit asymmetric: uint8 levels in [0,255], one byte each;
//   - 4-bit symmetric: signed nibbles in [-8,7], packed as tensor.I4 (low nibble first, each
//     row padded to a byte);
//   - 4-bit asymmetric: unsigned nibbles in [0,15], packed the same way.
//
// Scales has Rows*Groups entries ([Rows, Groups] row-major; PerTensor: one entry) and Zeros,
// for asymmetric schemes only, the same shape; nil when symmetric.
type QTensor struct {
	Name   string
	Scheme Scheme
	Rows   int
	Cols   int
	Groups int // scale groups per row (1 for PerTensor/PerChannel)
	Data   []byte
	Scales []float32
	Zeros  []int32
}
