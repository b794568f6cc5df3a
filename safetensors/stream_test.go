package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tensor streamed in pieces reads back exactly like one written whole, and the piece
// buffer may be reused between pieces.
func TestStreamTensorPieces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.safetensors")
	want := make([]float32, 10)
	for i := range want {
		want[i] = float32(i) - 4.5
	}
	whole := tensor.FromF32(want, 2, 5).Data
	w, err := Create(p, []TensorInfo{{Name: "a", DType: tensor.F32, Shape: []int{2, 5}}, {Name: "b", DType: tensor.U8, Shape: []int{2}}}, nil)
	require.NoError(t, err)
	buf := make([]byte, 12)
	require.NoError(t, w.StreamTensor("a", func(write func([]byte) error) error {
		for off := 0; off < len(whole); off += len(buf) {
			n := copy(buf, whole[off:])
			if err := write(buf[:n]); err != nil {
				return err
			}
			clear(buf) // reused: the writer must not keep it
		}
		return nil
	}))
	require.NoError(t, w.WriteTensor("b", []byte{7, 9}))
	require.NoError(t, w.Close())

	f, err := Open(p)
	require.NoError(t, err)
	defer f.Close()
	a, err := f.Tensor("a")
	require.NoError(t, err)
	assert.Equal(t, want, a.F32())
	b, err := f.Tensor("b")
	require.NoError(t, err)
	assert.Equal(t, []byte{7, 9}, b.Data)
}

func TestStreamTensorChecks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.safetensors")
	infos := []TensorInfo{{Name: "a", DType: tensor.F16, Shape: []int{3}}, {Name: "b", DType: tensor.U8, Shape: []int{1}}}
	w, err := Create(p, infos, nil)
	require.NoError(t, err)
	none := func(func([]byte) error) error { return nil }
	assert.ErrorContains(t, w.StreamTensor("b", none), `"b" written out of order (expected "a" next)`)
	assert.ErrorContains(t, w.StreamTensor("a", none), `tensor "a": 0 bytes given, F16[3] needs 6`)
	err = w.StreamTensor("a", func(write func([]byte) error) error {
		require.NoError(t, write(make([]byte, 4)))
		return write(make([]byte, 4))
	})
	assert.ErrorContains(t, err, `tensor "a": more than the 6 bytes F16[3] needs`)
	boom := errors.New("boom")
	assert.ErrorIs(t, w.StreamTensor("a", func(func([]byte) error) error { return boom }), boom)
	w.Abort()
	assert.ErrorContains(t, w.StreamTensor("a", none), "after Close or Abort")
	assertNoTemp(t, dir)
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err))
}

// CopyTensor copies a tensor of one file into another byte for byte, from a sharded
// checkpoint's Section, and checks sizes and order.
func TestCopyTensor(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	a := tensor.FromF32([]float32{1, -2, 3.5, 4}, 2, 2)
	b := tensor.FromU16(tensor.BF16, []uint16{0x3f80, 0xc000, 0x4040}, 3)
	require.NoError(t, WriteFile(src, []NamedTensor{{"a", a}, {"b", b}}, nil))
	c, err := OpenCheckpoint(src)
	require.NoError(t, err)
	defer c.Close()
	secB, ok := c.Section("b")
	require.True(t, ok)
	assert.Equal(t, int64(6), secB.Size)
	secA, _ := c.Section("a")
	_, ok = c.Section("zz")
	assert.False(t, ok)

	dst := filepath.Join(dir, "dst.safetensors")
	w, err := Create(dst, []TensorInfo{{Name: "b", DType: tensor.BF16, Shape: []int{3}}, {Name: "x", DType: tensor.U8, Shape: []int{1}}, {Name: "a", DType: tensor.F32, Shape: []int{2, 2}}}, nil)
	require.NoError(t, err)
	assert.ErrorContains(t, w.CopyTensor("a", secA), `"a" written out of order (expected "b" next)`)
	assert.ErrorContains(t, w.CopyTensor("b", secA), `tensor "b": 16 bytes given`)
	require.NoError(t, w.CopyTensor("b", secB))
	require.NoError(t, w.WriteTensor("x", []byte{9}))
	require.NoError(t, w.CopyTensor("a", secA))
	require.NoError(t, w.Close())

	f, err := Open(dst)
	require.NoError(t, err)
	defer f.Close()
	gotA, err := f.Tensor("a")
	require.NoError(t, err)
	assert.Equal(t, a.F32(), gotA.F32())
	gotB, err := f.Tensor("b")
	require.NoError(t, err)
	assert.Equal(t, b.Data, gotB.Data)

	w2, err := Create(filepath.Join(dir, "t.safetensors"), []TensorInfo{{Name: "a", DType: tensor.F32, Shape: []int{2, 2}}}, nil)
	require.NoError(t, err)
	defer w2.Abort()
	short := secA
	short.Offset = secB.Offset // 16 bytes from b's start run past the end of the file
	assert.ErrorContains(t, w2.CopyTensor("a", short), "ended after 6 of 16 bytes")
}
