package tensor

import "fmt"

// DType is the element type of a tensor.
type DType uint8

// The dtypes autoq reads, computes with and writes.
const (
	Invalid DType = iota
	F32
	F16
	BF16
	I8
	U8
	I32
	I4  // packed, two per byte; see the package comment
	I64 // compressed-tensors' weight_shape
)

var dtypeNames = [...]string{Invalid: "invalid", F32: "F32", F16: "F16", BF16: "BF16", I8: "I8", U8: "U8", I32: "I32", I4: "I4", I64: "I64"}

// String returns the safetensors spelling of the dtype ("F32", "BF16", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType parses a safetensors dtype name. I4 is autoq's own name for packed int4.
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if i != int(Invalid) && n == s {
			return DType(i), nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
}

// Bits is the storage size of one element in bits.
func (d DType) Bits() int {
	switch d {
	case I64:
		return 64
	case F32, I32:
		return 32
	case F16, BF16:
		return 16
	case I8, U8:
		return 8
	case I4:
		return 4
	}
	return 0
}

// IsFloat reports whether the dtype holds floating-point values.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// RowBytes is the number of bytes a row of n elements occupies (I4 rows are padded to a byte).
func (d DType) RowBytes(n int) int {
	if d == I4 {
		return (n + 1) / 2
	}
	return n * d.Bits() / 8
}
