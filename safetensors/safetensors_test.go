package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawFile builds a safetensors image from a literal header and data section, so that the
// malformed cases do not depend on the writer under test.
func rawFile(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.safetensors")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func TestRoundTripEveryDType(t *testing.T) {
	f16 := tensor.FromU16(tensor.F16, []uint16{tensor.F32ToF16(1.5), tensor.F32ToF16(-2), 0x7c00, 0x0001}, 2, 2)
	bf16 := tensor.FromU16(tensor.BF16, []uint16{tensor.F32ToBF16(3.25), 0xff80}, 2)
	i32 := tensor.New(tensor.I32, 3)
	copy(i32.I32(), []int32{math.MinInt32, 0, math.MaxInt32})
	u8 := &tensor.Tensor{DType: tensor.U8, Shape: []int{2, 3}, Data: []byte{0, 1, 2, 253, 254, 255}}
	in := []NamedTensor{
		{"a.f32", tensor.FromF32([]float32{1, -2.5, float32(math.Inf(1)), 7e-40, 0, 3}, 2, 3)},
		{"b.f16", f16},
		{"c.bf16", bf16},
		{"d.i8", tensor.FromI8([]int8{-128, 127, 0}, 3)},
		{"e.u8", u8},
		{"f.i32", i32},
		{"g.scalar", tensor.FromF32([]float32{42})},
		{"h.empty", tensor.New(tensor.F32, 0, 4)},
	}
	meta := map[string]string{"format": "pt", "autoq.note": "ünïcode \"quoted\""}
	p := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, WriteFile(p, in, meta))

	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(raw)
	assert.Zero(t, (8+n)%8, "data section must start at a multiple of 8")
	assert.True(t, json.Valid(raw[8:8+n]), "header is valid JSON")

	f, err := Open(p)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, meta, f.Metadata())
	names := f.Names()
	// Offset order; the empty tensor sits at the end offset with size 0, so it sorts before
	// nothing else but must be present.
	assert.ElementsMatch(t, []string{"a.f32", "b.f16", "c.bf16", "d.i8", "e.u8", "f.i32", "g.scalar", "h.empty"}, names)
	for _, nt := range in {
		got, err := f.Tensor(nt.Name)
		require.NoError(t, err, nt.Name)
		assert.Equal(t, nt.T.DType, got.DType, nt.Name)
		assert.Equal(t, nt.T.Shape, got.Shape, nt.Name)
		assert.Equal(t, nt.T.Data, got.Data, nt.Name)
		info, ok := f.Info(nt.Name)
		require.True(t, ok)
		assert.Equal(t, int64(len(nt.T.Data)), info.Size)
	}
	_, ok := f.Info("nope")
	assert.False(t, ok)
	_, err = f.Tensor("nope")
	assert.ErrorContains(t, err, `no tensor "nope"`)
}

func TestTensorIsZeroCopyAndClosed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, WriteFile(p, []NamedTensor{{"w", tensor.FromF32([]float32{1, 2, 3, 4}, 4)}}, nil))
	f, err := Open(p)
	require.NoError(t, err)
	a, err := f.Tensor("w")
	require.NoError(t, err)
	b, err := f.Tensor("w")
	require.NoError(t, err)
	assert.Same(t, &a.Data[0], &b.Data[0], "two reads share the mapped bytes")
	assert.Equal(t, []float32{1, 2, 3, 4}, a.F32())
	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close twice is harmless")
	_, err = f.Tensor("w")
	assert.ErrorContains(t, err, "after Close")
}

func TestOffsetOrderNotHeaderOrder(t *testing.T) {
	// Header lists b before a, but a's bytes come first.
	h := `{"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	f, err := Open(writeTemp(t, rawFile(h, []byte{9, 7, 8})))
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, []string{"a", "b"}, f.Names())
	b, err := f.Tensor("b")
	require.NoError(t, err)
	assert.Equal(t, []byte{7, 8}, b.Data)
}

func TestUnalignedDataIsCopied(t *testing.T) {
	// Header of 1 + ... bytes so that the F32 tensor starts at an odd address.
	h := `{"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`
	data := []byte{0, 0, 0, 0x80, 0x3f} // 1.0f little endian after one byte
	f, err := Open(writeTemp(t, rawFile(h, data)))
	require.NoError(t, err)
	defer f.Close()
	w, err := f.Tensor("w")
	require.NoError(t, err)
	assert.Equal(t, []float32{1}, w.F32())
}

func TestMalformed(t *testing.T) {
	okEntry := `"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	eight := make([]byte, 8)
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, 200<<20)
	pastEnd := make([]byte, 16)
	binary.LittleEndian.PutUint64(pastEnd, 9)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than the 8-byte header length"},
		{"header too big", hugeLen, "exceeds the 104857600-byte limit"},
		{"header past end", pastEnd, "runs past the end of the file"},
		{"bad json", rawFile(`{"w":{"dtype":`, eight), "invalid JSON header"},
		{"not object", rawFile(`[1,2]`, nil), "not a JSON object"},
		{"junk after object", rawFile(`{}x`, nil), "after the object"},
		{"unknown dtype", rawFile(`{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}`, eight), `tensor "w": unknown dtype "Q7"`},
		{"f64", rawFile(`{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, eight), `tensor "w": unsupported dtype F64`},
		{"u64", rawFile(`{"w":{"dtype":"U64","shape":[1],"data_offsets":[0,8]}}`, eight), `tensor "w": unsupported dtype U64`},
		{"bool", rawFile(`{"w":{"dtype":"BOOL","shape":[8],"data_offsets":[0,8]}}`, eight), `tensor "w": unsupported dtype BOOL`},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight), `tensor "w": bad dimension -2`},
		{"float dim", rawFile(`{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, eight), `tensor "w": bad entry`},
		{"overflow", rawFile(`{"w":{"dtype":"F32","shape":[281474976710656,281474976710656],"data_offsets":[0,8]}}`, eight), `tensor "w": shape [281474976710656 281474976710656] overflows`},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), `tensor "w": data_offsets [0 8] hold 8 bytes but F32[3] needs 12`},
		{"missing field", rawFile(`{"w":{"dtype":"F32","shape":[2]}}`, eight), `tensor "w": entry needs dtype, shape and data_offsets`},
		{"reversed offsets", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, eight), `tensor "w": bad data_offsets`},
		{"out of bounds", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, eight), `tensor "w": data_offsets [4, 12] out of bounds`},
		{"overlap", rawFile(`{`+okEntry+`,"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), `overlap tensor`},
		{"gap", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), `tensor "w": data_offsets [4, 8] leave a gap of 4 bytes`},
		{"trailing", rawFile(`{`+okEntry+`}`, make([]byte, 12)), "4 trailing bytes after the last tensor"},
		{"duplicate", rawFile(`{`+okEntry+`,`+okEntry+`}`, eight), `tensor "w": duplicate entry`},
		{"metadata not strings", rawFile(`{"__metadata__":{"a":1},`+okEntry+`}`, eight), "__metadata__ must map strings to strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, c.file)
			f, err := Open(p)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorContains(t, err, c.want)
			assert.ErrorContains(t, err, p, "the error names the file")
		})
	}
}

func TestOpenMissingAndDirectory(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "absent.safetensors"))
	assert.ErrorContains(t, err, "absent.safetensors")
	_, err = Open(t.TempDir())
	assert.ErrorContains(t, err, "not a regular file")
}

func TestWriterChecks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	_, err := Create(p, []TensorInfo{{Name: "a", DType: tensor.I4, Shape: []int{2, 2}}}, nil)
	assert.ErrorContains(t, err, "store packed int4 as U8")
	_, err = Create(p, []TensorInfo{{Name: "a", DType: tensor.U8, Shape: []int{1}}, {Name: "a", DType: tensor.U8, Shape: []int{1}}}, nil)
	assert.ErrorContains(t, err, `tensor "a": duplicate name`)
	_, err = Create(p, []TensorInfo{{Name: "__metadata__", DType: tensor.U8, Shape: []int{1}}}, nil)
	assert.ErrorContains(t, err, "invalid name")

	w, err := Create(p, []TensorInfo{{Name: "a", DType: tensor.F32, Shape: []int{2}}, {Name: "b", DType: tensor.U8, Shape: []int{3}}}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(8), w.Infos()[1].Offset)
	assert.ErrorContains(t, w.WriteTensor("b", []byte{1, 2, 3}), `"b" written out of order (expected "a" next)`)
	assert.ErrorContains(t, w.WriteTensor("a", []byte{1}), `tensor "a": 1 bytes given, F32[2] needs 8`)
	require.NoError(t, w.WriteTensor("a", make([]byte, 8)))
	assert.ErrorContains(t, w.Close(), `closed after 1 of 2 tensors (next: "b")`)
	assertNoTemp(t, dir)
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err), "an incomplete write creates nothing")
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.NotContains(t, e.Name(), ".tmp-", "temporary file left behind")
	}
}

func TestAtomicWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	require.NoError(t, WriteFile(p, []NamedTensor{{"old", tensor.FromF32([]float32{1}, 1)}}, nil))
	before, err := os.ReadFile(p)
	require.NoError(t, err)

	// A failed write (the second tensor's data has the wrong size) must leave the old file.
	bad := &tensor.Tensor{DType: tensor.F32, Shape: []int{2}, Data: make([]byte, 4)}
	err = WriteFile(p, []NamedTensor{{"new", tensor.FromF32([]float32{2}, 1)}, {"bad", bad}}, nil)
	require.Error(t, err)
	after, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assertNoTemp(t, dir)

	// An aborted stream too.
	w, err := Create(p, []TensorInfo{{Name: "x", DType: tensor.U8, Shape: []int{1}}}, nil)
	require.NoError(t, err)
	require.NoError(t, w.WriteTensor("x", []byte{5}))
	w.Abort()
	after, err = os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assertNoTemp(t, dir)
}
