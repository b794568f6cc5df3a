package tensor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackInt4NibbleOrder(t *testing.T) {
	// Element 2i in the low nibble: (1, -2) -> 0xE1; (-8, 7) -> 0x78; a lone 3 -> 0x03.
	p, err := PackInt4([]int8{1, -2, -8, 7, 3})
	require.NoError(t, err)
	assert.Equal(t, []byte{0xe1, 0x78, 0x03}, p)
	assert.Equal(t, []int8{1, -2, -8, 7, 3}, UnpackInt4(p, 5))
	assert.Equal(t, []int8{-1, -1}, UnpackInt4([]byte{0xff}, 2))

	_, err = PackInt4([]int8{0, 8})
	require.ErrorContains(t, err, "value 8 at 1 is outside [-8, 7]")
	_, err = PackInt4([]int8{-9})
	require.ErrorContains(t, err, "value -9 at 0")
}

func TestPackInt4RoundTrip(t *testing.T) {
	vals := make([]int8, 0, 16*3)
	for i := 0; i < 48; i++ {
		vals = append(vals, int8(i%16-8)) // every value in [-8, 7], several times
	}
	for _, cols := range []int{1, 3, 8, 16} {
		rows := len(vals) / cols
		v := vals[:rows*cols]
		p, err := PackInt4Rows(v, rows, cols)
		require.NoError(t, err)
		require.Len(t, p, rows*((cols+1)/2))
		assert.Equal(t, v, UnpackInt4Rows(p, rows, cols), "cols %d", cols)
	}
	// Odd rows are padded independently: the second row starts on a fresh byte.
	p, err := PackInt4Rows([]int8{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x21, 0x03, 0x54, 0x06}, p)

	_, err = PackInt4Rows([]int8{1, 2, 3}, 2, 2)
	require.ErrorContains(t, err, "3 values for 2x2")
	_, err = PackInt4Rows([]int8{1, 2, 3, 9}, 2, 2)
	require.ErrorContains(t, err, "row 1")
}

func TestByteSize(t *testing.T) {
	assert.Equal(t, 24, ByteSize(F32, []int{2, 3}))
	assert.Equal(t, 8, ByteSize(BF16, []int{4}))
	assert.Equal(t, 6, ByteSize(F16, []int{3, 1}))
	assert.Equal(t, 12, ByteSize(I32, []int{3}))
	assert.Equal(t, 5, ByteSize(U8, []int{5}))
	assert.Equal(t, 4, ByteSize(I4, []int{2, 4}))
	assert.Equal(t, 9, ByteSize(I4, []int{3, 5})) // 3 rows of (5+1)/2 bytes
	assert.Equal(t, 12, ByteSize(I4, []int{2, 2, 5}))
	assert.Equal(t, 4, ByteSize(F32, nil)) // scalar
	assert.Equal(t, 1, ByteSize(I4, nil))
	assert.Equal(t, 0, ByteSize(F32, []int{0, 7}))
}

func TestDType(t *testing.T) {
	for _, d := range []DType{F32, F16, BF16, I8, U8, I32, I4, I64} {
		got, err := ParseDType(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, got)
	}
	_, err := ParseDType("F64")
	require.ErrorContains(t, err, `unknown dtype "F64"`)
	_, err = ParseDType("invalid")
	require.Error(t, err)
	assert.Equal(t, "DType(42)", DType(42).String())
	assert.Equal(t, 16, BF16.Bits())
	assert.Equal(t, 4, I4.Bits())
	assert.True(t, F16.IsFloat())
	assert.False(t, I8.IsFloat())
	assert.Equal(t, 3, I4.RowBytes(5))
	assert.Equal(t, 10, F16.RowBytes(5))
}

func TestViewsShareMemory(t *testing.T) {
	v := []float32{1, 2, 3, 4, 5, 6}
	x := FromF32(v, 2, 3)
	assert.Equal(t, 2, x.Rows())
	assert.Equal(t, 3, x.Cols())
	assert.Equal(t, 6, x.NumElements())
	x.F32()[4] = 50 // a view: writes reach the caller's slice
	assert.Equal(t, float32(50), v[4])
	v[0] = -1
	assert.Equal(t, float32(-1), x.F32()[0])
	assert.Equal(t, math.Float32bits(-1), uint32(x.Data[0])|uint32(x.Data[1])<<8|uint32(x.Data[2])<<16|uint32(x.Data[3])<<24)

	raw := make([]byte, 8)
	y, err := FromBytes(I32, []int{2}, raw)
	require.NoError(t, err)
	y.I32()[1] = 7
	assert.Equal(t, byte(7), raw[4])
	_, err = FromBytes(F16, []int{3}, raw)
	require.ErrorContains(t, err, "F16[3] needs 6 bytes, got 8")

	i8 := []int8{-1, 2}
	assert.Equal(t, []float32{-1, 2}, FromI8(i8, 2).ToF32())
	u16 := []uint16{0x3c00, 0xc000}
	assert.Equal(t, []float32{1, -2}, FromU16(F16, u16, 2).ToF32())
	assert.Equal(t, []float32{1, -2}, FromU16(BF16, []uint16{0x3f80, 0xc000}, 1, 2).ToF32())
	u8, err := FromBytes(U8, []int{2}, []byte{0, 255})
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 255}, u8.ToF32())
	i4, err := FromBytes(I4, []int{2, 3}, []byte{0x21, 0x03, 0x54, 0x0e})
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, -2}, i4.ToF32())

	// Empty views are fine.
	assert.Empty(t, FromF32(nil, 0).F32())
	// Viewing as the wrong dtype is a programming error.
	assert.Panics(t, func() { x.I8() })
	assert.Panics(t, func() { FromF32(v, 4) })

	n := New(BF16, 2, 2)
	assert.Len(t, n.Data, 8)
	assert.Equal(t, []int{2, 2}, n.Shape)
	s := New(F32) // scalar
	assert.Equal(t, 1, s.Rows())
	assert.Equal(t, 1, s.Cols())
}

func TestCheckFinite(t *testing.T) {
	require.NoError(t, CheckFinite("w", []float32{1, -2, 0}))
	err := CheckFinite("layers.0.wq", []float32{1, float32(math.Inf(-1)), float32(math.NaN())})
	require.ErrorContains(t, err, `tensor "layers.0.wq": non-finite value -Inf at element 1`)
}
