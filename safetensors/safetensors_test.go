package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
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

// readTensors opens the file at path (closed when the test ends) and reads the named tensors.
func readTensors(t *testing.T, path string, names ...string) []*tensor.Tensor {
	t.Helper()
	f := testutil.Open(t, Open, path)
	out := make([]*tensor.Tensor, len(names))
	for i, n := range names {
		var err error
		out[i], err = f.Tensor(n)
		require.NoError(t, err, n)
	}
	return out
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
	w := readTensors(t, writeTemp(t, rawFile(h, data)), "w")[0]
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

// writeSharded writes a two-shard checkpoint by hand (the index JSON is literal).
func writeSharded(t *testing.T, index string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []NamedTensor{
		{"model.embed_tokens.weight", tensor.FromF32([]float32{1, 2, 3, 4}, 2, 2)},
		{"model.norm.weight", tensor.FromF32([]float32{5, 6}, 2)},
	}, map[string]string{"format": "pt"}))
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []NamedTensor{
		{"lm_head.weight", tensor.FromF32([]float32{7, 8, 9, 10}, 2, 2)},
		{"stray", tensor.FromF32([]float32{0}, 1)}, // in a shard but not in weight_map: ignored
	}, nil))
	require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644))
	return dir
}

const goodIndex = `{"metadata":{"total_size":40},"weight_map":{
 "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
 "model.norm.weight":"model-00001-of-00002.safetensors",
 "lm_head.weight":"model-00002-of-00002.safetensors"}}`

func TestShardedCheckpoint(t *testing.T) {
	dir := writeSharded(t, goodIndex)
	for _, path := range []string{dir, filepath.Join(dir, IndexFileName)} {
		c, err := OpenCheckpoint(path)
		require.NoError(t, err, path)
		assert.Equal(t, []string{"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}, c.Names())
		w, err := c.Tensor("lm_head.weight")
		require.NoError(t, err)
		assert.Equal(t, []float32{7, 8, 9, 10}, w.F32())
		info, ok := c.Info("model.norm.weight")
		require.True(t, ok)
		assert.Equal(t, []int{2}, info.Shape)
		_, ok = c.Info("stray")
		assert.False(t, ok, "tensors outside weight_map are not part of the checkpoint")
		assert.Equal(t, "pt", c.Metadata()["format"])
		assert.Len(t, c.Files(), 2)
		require.NoError(t, c.Close())
	}
}

func TestShardedCheckpointErrors(t *testing.T) {
	cases := map[string]struct{ index, want string }{
		"bad json":      {`{"weight_map":`, "invalid JSON"},
		"empty map":     {`{"weight_map":{}}`, "missing or empty weight_map"},
		"escaping path": {`{"weight_map":{"a":"../x.safetensors"}}`, `tensor "a": shard "../x.safetensors" is not a file name`},
		"missing shard": {`{"weight_map":{"a":"nope.safetensors"}}`, "nope.safetensors"},
		"wrong shard":   {`{"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors"}}`, `tensor "lm_head.weight": not found in shard model-00001-of-00002.safetensors`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeSharded(t, c.index)
			_, err := OpenCheckpoint(dir)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestSingleFileCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, SingleFileName)
	require.NoError(t, WriteFile(p, []NamedTensor{{"w", tensor.FromF32([]float32{3}, 1)}}, map[string]string{"k": "v"}))
	for _, path := range []string{dir, p} {
		c, err := OpenCheckpoint(path)
		require.NoError(t, err)
		assert.Equal(t, []string{"w"}, c.Names())
		assert.Equal(t, map[string]string{"k": "v"}, c.Metadata())
		require.NoError(t, c.Close())
	}
	_, err := OpenCheckpoint(t.TempDir())
	assert.ErrorContains(t, err, "neither model.safetensors nor model.safetensors.index.json")
}

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

	got := readTensors(t, p, "a", "b")
	assert.Equal(t, want, got[0].F32())
	assert.Equal(t, []byte{7, 9}, got[1].Data)
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

	got := readTensors(t, dst, "a", "b")
	assert.Equal(t, a.F32(), got[0].F32())
	assert.Equal(t, b.Data, got[1].Data)

	w2, err := Create(filepath.Join(dir, "t.safetensors"), []TensorInfo{{Name: "a", DType: tensor.F32, Shape: []int{2, 2}}}, nil)
	require.NoError(t, err)
	defer w2.Abort()
	short := secA
	short.Offset = secB.Offset // 16 bytes from b's start run past the end of the file
	assert.ErrorContains(t, w2.CopyTensor("a", short), "ended after 6 of 16 bytes")
}
