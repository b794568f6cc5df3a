package tensor

import (
	"fmt"
	"math"
	"unsafe"
)

// Tensor is a row-major n-dimensional array stored in Data. Data may alias memory owned by
// something else (a mapped file, a caller's slice); the views below never copy.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// ByteSize is the storage size of a tensor of this dtype and shape. For I4 the last
// dimension is packed per row (see the package comment).
func ByteSize(d DType, shape []int) int {
	if len(shape) == 0 {
		return d.RowBytes(1)
	}
	last := shape[len(shape)-1]
	return NumElements(shape[:len(shape)-1]) * d.RowBytes(last)
}

// New allocates a zeroed tensor.
func New(d DType, shape ...int) *Tensor {
	for _, s := range shape {
		if s < 0 {
			panic(fmt.Sprintf("tensor.New: negative dimension in %v", shape))
		}
	}
	return &Tensor{DType: d, Shape: append([]int(nil), shape...), Data: make([]byte, ByteSize(d, shape))}
}

// FromBytes wraps data without copying, checking that its length matches dtype and shape.
func FromBytes(d DType, shape []int, data []byte) (*Tensor, error) {
	if want := ByteSize(d, shape); len(data) != want {
		return nil, fmt.Errorf("tensor: %s%v needs %d bytes, got %d", d, shape, want, len(data))
	}
	return &Tensor{DType: d, Shape: append([]int(nil), shape...), Data: data}, nil
}

// FromF32 wraps a float32 slice without copying.
func FromF32(v []float32, shape ...int) *Tensor {
	if NumElements(shape) != len(v) {
		panic(fmt.Sprintf("tensor.FromF32: %d values for shape %v", len(v), shape))
	}
	return &Tensor{DType: F32, Shape: append([]int(nil), shape...), Data: bytesOf(v)}
}

// FromI8 wraps an int8 slice without copying.
func FromI8(v []int8, shape ...int) *Tensor {
	if NumElements(shape) != len(v) {
		panic(fmt.Sprintf("tensor.FromI8: %d values for shape %v", len(v), shape))
	}
	return &Tensor{DType: I8, Shape: append([]int(nil), shape...), Data: bytesOf(v)}
}

// FromU16 wraps raw F16 or BF16 bits without copying.
func FromU16(d DType, v []uint16, shape ...int) *Tensor {
	if d != F16 && d != BF16 {
		panic("tensor.FromU16: dtype must be F16 or BF16")
	}
	if NumElements(shape) != len(v) {
		panic(fmt.Sprintf("tensor.FromU16: %d values for shape %v", len(v), shape))
	}
	return &Tensor{DType: d, Shape: append([]int(nil), shape...), Data: bytesOf(v)}
}

func bytesOf[T any](v []T) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(z)))
}

func viewAs[T any](b []byte) []T {
	var z T
	n := len(b) / int(unsafe.Sizeof(z))
	if n == 0 {
		return []T{}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// NumElements is the number of elements.
func (t *Tensor) NumElements() int { return NumElements(t.Shape) }

// Rows and Cols view a tensor of rank >= 1 as a matrix: Cols is the last dimension and Rows
// the product of the others.
func (t *Tensor) Rows() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return NumElements(t.Shape[:len(t.Shape)-1])
}

// Cols is the last dimension (1 for a scalar).
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

func (t *Tensor) must(d DType) {
	if t.DType != d {
		panic(fmt.Sprintf("tensor: view as %s of a %s tensor", d, t.DType))
	}
}

// F32 views the data as float32 (no copy). Panics if the dtype is not F32.
func (t *Tensor) F32() []float32 { t.must(F32); return viewAs[float32](t.Data) }

// I8 views the data as int8 (no copy).
func (t *Tensor) I8() []int8 { t.must(I8); return viewAs[int8](t.Data) }

// I32 views the data as int32 (no copy).
func (t *Tensor) I32() []int32 { t.must(I32); return viewAs[int32](t.Data) }

// I64 views the data as int64 (no copy).
func (t *Tensor) I64() []int64 { t.must(I64); return viewAs[int64](t.Data) }

// U16 views F16 or BF16 data as raw bits (no copy).
func (t *Tensor) U16() []uint16 {
	if t.DType != F16 && t.DType != BF16 {
		panic(fmt.Sprintf("tensor: view as uint16 of a %s tensor", t.DType))
	}
	return viewAs[uint16](t.Data)
}

// ToF32 returns the values as float32: a view for F32, a converted copy for F16, BF16, I8,
// U8, I32 and I64, and unpacked values for I4.
func (t *Tensor) ToF32() []float32 {
	switch t.DType {
	case F32:
		return t.F32()
	case F16:
		return F16ToF32Slice(nil, t.U16())
	case BF16:
		return BF16ToF32Slice(nil, t.U16())
	case I8:
		return intsToF32(t.I8())
	case U8:
		return intsToF32(t.Data)
	case I32:
		return intsToF32(t.I32())
	case I64:
		return intsToF32(t.I64())
	case I4:
		return intsToF32(UnpackInt4Rows(t.Data, t.Rows(), t.Cols()))
	}
	panic(fmt.Sprintf("tensor: ToF32 of %s", t.DType))
}

// intsToF32 converts integers to float32 (rounded to nearest beyond 2^24).
func intsToF32[T int8 | uint8 | int32 | int64](src []T) []float32 {
	out := make([]float32, len(src))
	for i, v := range src {
		out[i] = float32(v)
	}
	return out
}

// CheckFinite returns an error naming the first NaN or Inf element (flat index), or nil.
// name is used in the message (a tensor name).
func CheckFinite(name string, v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("tensor %q: non-finite value %v at element %d", name, x, i)
		}
	}
	return nil
}
