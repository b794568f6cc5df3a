package gguf

import (
	"bytes"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyFile is one uint32 key and one 1x2 F32 tensor, written by hand below.
func tinyFile(t *testing.T) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	data := le.AppendUint32(le.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-2))
	require.NoError(t, WriteFile(p, []KV{{"a", uint32(7)}}, []TensorInfo{{Name: "b", Shape: []int{1, 2}, Type: F32}}, [][]byte{data}))
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	return p, raw
}

func TestWriterByteLayoutByHand(t *testing.T) {
	_, raw := tinyFile(t)
	want := "47475546" + "03000000" + // GGUF, version 3
		"0100000000000000" + "0100000000000000" + // 1 tensor, 1 key
		"0100000000000000" + "61" + "04000000" + "07000000" + // "a": uint32 7
		"0100000000000000" + "62" + "02000000" + // "b", 2 dims
		"0200000000000000" + "0100000000000000" + // ne0 = 2 (cols), ne1 = 1 (rows)
		"00000000" + "0000000000000000" + // F32, offset 0
		strings.Repeat("00", 96-82) + // header padded to 32
		"0000c03f" + "000000c0" + strings.Repeat("00", 24) // 1.5, -2, padded
	assert.Equal(t, want, hex.EncodeToString(raw))
}

func TestRoundTripEveryValueType(t *testing.T) {
	kvs := []KV{
		{"u8", uint8(200)}, {"i8", int8(-3)}, {"u16", uint16(60000)}, {"i16", int16(-300)},
		{"u32", uint32(4e9)}, {"i32", int32(-7)}, {"f32", float32(0.25)}, {"b", true},
		{"s", "héllo ▁"}, {"u64", uint64(1) << 40}, {"i64", int64(-1) << 40}, {"f64", 1e-300},
		{"au8", []uint8{1, 2}}, {"ai8", []int8{-1}}, {"au16", []uint16{9}}, {"ai16", []int16{-9}},
		{"au32", []uint32{1, 2, 3}}, {"ai32", []int32{-1, 6}}, {"af32", []float32{1, -0.5}},
		{"ab", []bool{true, false}}, {"as", []string{"x", "", "▁y"}}, {"au64", []uint64{5}},
		{"ai64", []int64{-5}}, {"af64", []float64{2.5}}, {"empty", []string{}},
		{KeyAlignment, uint32(64)},
	}
	infos := []TensorInfo{
		{Name: "w", Shape: []int{3, 64}, Type: Q8_0},
		{Name: "n", Shape: []int{5}, Type: F32},
		{Name: "k", Shape: []int{2, 256}, Type: Q4_K},
	}
	var data [][]byte
	for i, ti := range infos {
		sz, err := tensorBytes(ti.Type, ti.Shape)
		require.NoError(t, err)
		data = append(data, bytes.Repeat([]byte{byte(i + 1)}, int(sz)))
	}
	p := filepath.Join(t.TempDir(), "all.gguf")
	require.NoError(t, WriteFile(p, kvs, infos, data))
	f, err := Open(p)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, kvs, f.KVs)
	assert.Equal(t, int64(64), f.Alignment)
	assert.Zero(t, f.DataOffset%64)
	require.Len(t, f.Tensors, 3)
	for i, ti := range infos {
		got, ok := f.Tensor(ti.Name)
		require.True(t, ok)
		assert.Equal(t, ti.Shape, got.Shape)
		assert.Equal(t, ti.Type, got.Type)
		assert.Zero(t, got.Offset%64, "offsets aligned")
		b, err := f.TensorData(ti.Name)
		require.NoError(t, err)
		assert.Equal(t, data[i], b)
	}
	assert.Equal(t, int64(3*34*2), f.Tensors[0].Size)
	assert.Equal(t, int64(2*144), f.Tensors[2].Size)
	s, err := f.String("s")
	require.NoError(t, err)
	assert.Equal(t, "héllo ▁", s)
	_, err = f.Uint32("s")
	assert.ErrorContains(t, err, `key "s"`)
	_, err = f.Float32("nope")
	assert.ErrorContains(t, err, "missing")
}

func TestWriterRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.gguf")
	cases := []struct {
		kvs   []KV
		infos []TensorInfo
		want  string
	}{
		{[]KV{{"a", 1}}, nil, `key "a": unsupported metadata value of Go type int`},
		{[]KV{{"a", uint8(1)}, {"a", uint8(2)}}, nil, `key "a": duplicate`},
		{[]KV{{KeyAlignment, uint32(24)}}, nil, "power of two"},
		{nil, []TensorInfo{{Name: "w", Shape: []int{4, 172}, Type: Q8_0}}, `tensor "w": shape [4 172], type Q8_0: a row of 172 elements is not a positive multiple of Q8_0's block size 32`},
		{nil, []TensorInfo{{Name: "w", Shape: []int{1, 2, 3, 4, 5}, Type: F32}}, "5 dimensions"},
		{nil, []TensorInfo{{Name: "w", Shape: []int{1}, Type: Type(99)}}, "unknown tensor type 99"},
		{nil, []TensorInfo{{Name: strings.Repeat("x", 64), Shape: []int{1}, Type: F32}}, "longer than ggml's 63"},
		{nil, []TensorInfo{{Name: "w", Shape: []int{1}, Type: F32}, {Name: "w", Shape: []int{1}, Type: F32}}, `tensor "w": duplicate name`},
	}
	for _, c := range cases {
		_, err := Create(p, c.kvs, c.infos)
		assert.ErrorContains(t, err, c.want)
		assert.ErrorContains(t, err, p)
	}
	w, err := Create(p, nil, []TensorInfo{{Name: "a", Shape: []int{2}, Type: F32}, {Name: "b", Shape: []int{1}, Type: F32}})
	require.NoError(t, err)
	assert.ErrorContains(t, w.WriteTensor("b", make([]byte, 4)), `tensor "b" written out of order (expected "a" next)`)
	assert.ErrorContains(t, w.WriteTensor("a", make([]byte, 4)), "4 bytes given, F32 [2] needs 8")
	require.NoError(t, w.WriteTensor("a", make([]byte, 8)))
	assert.ErrorContains(t, w.Close(), `closed after 1 of 2 tensors (next: "b")`)
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err), "nothing left at the target")
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "no temporary file left")
}

func TestReaderErrorsNameFileAndProblem(t *testing.T) {
	p, raw := tinyFile(t)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), raw...)) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated: the magic needs 4 bytes"},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), `bad magic "XGUF"`},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), "unsupported GGUF version 2"},
		{"header cut in key", raw[:40], `truncated: the value of key "a" needs 4 bytes at offset 37`},
		{"cut in tensor info", raw[:60], `truncated: dimension 0 of tensor "b" needs 8 bytes at offset 54`},
		{"data cut", raw[:100], `tensor "b": data [0, 8) runs past the end of the data section (4 bytes; file truncated?)`},
		{"value type", mod(func(b []byte) []byte { b[33] = 42; return b }), `key "a": unknown value type 42`},
		{"tensor type", mod(func(b []byte) []byte { b[70] = 99; return b }), `tensor "b": unknown tensor type 99`},
		{"shape vs type", mod(func(b []byte) []byte { b[70] = byte(Q8_0); return b }), `tensor "b": shape [1 2], type Q8_0`},
		{"zero dim", mod(func(b []byte) []byte { b[54] = 0; return b }), `tensor "b": dimension 0 is 0`},
		{"misaligned", mod(func(b []byte) []byte { b[74] = 4; return b }), `tensor "b": data offset 4 is not a multiple of the alignment 32`},
		{"offset past end", mod(func(b []byte) []byte { b[74] = 64; return b }), `tensor "b": data [64, 72) runs past the end`},
		{"huge count", mod(func(b []byte) []byte { b[15] = 0x7f; return b }), "cannot fit in 128 bytes"},
		{"huge string", mod(func(b []byte) []byte { b[31] = 0x7f; return b }), "truncated: the key of metadata entry 0 needs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(p, bytes.NewReader(c.data), int64(len(c.data)))
			require.Error(t, err)
			assert.ErrorContains(t, err, c.want)
			assert.ErrorContains(t, err, p)
		})
	}
}

func TestReaderFindsOverlapsAndDuplicates(t *testing.T) {
	infos := []TensorInfo{{Name: "a", Shape: []int{8}, Type: F32}, {Name: "b", Shape: []int{8}, Type: F32}}
	hdr, err := encodeHeader(nil, []TensorInfo{{Name: "a", Shape: []int{8}, Offset: 0}, {Name: "b", Shape: []int{8}, Offset: 0}})
	require.NoError(t, err)
	file := append(hdr, make([]byte, 96+64-len(hdr))...)
	_, err = Read("o.gguf", bytes.NewReader(file), int64(len(file)))
	assert.ErrorContains(t, err, `o.gguf: tensor "b": data [0, 32) overlaps tensor "a"'s [0, 32)`)
	_ = infos

	hdr, err = encodeHeader([]KV{{"k", uint8(1)}, {"k", uint8(2)}}, nil)
	require.NoError(t, err)
	_, err = Read("d.gguf", bytes.NewReader(hdr), int64(len(hdr)))
	assert.ErrorContains(t, err, `d.gguf: key "k": duplicate metadata key`)

	hdr, err = encodeHeader(nil, []TensorInfo{{Name: "a", Shape: []int{8}}, {Name: "a", Shape: []int{8}, Offset: 32}})
	require.NoError(t, err)
	file = append(hdr, make([]byte, 256)...)
	_, err = Read("n.gguf", bytes.NewReader(file), int64(len(file)))
	assert.ErrorContains(t, err, `n.gguf: tensor "a": duplicate tensor name`)

	hdr, err = encodeHeader([]KV{{"flag", true}}, nil)
	require.NoError(t, err)
	hdr[len(hdr)-1] = 2
	_, err = Read("b.gguf", bytes.NewReader(hdr), int64(len(hdr)))
	assert.ErrorContains(t, err, `key "flag": bool byte is 2`)
}

// FuzzRead checks that the reader never panics and that whatever it accepts is
// self-consistent: every tensor's data lies inside the file.
func FuzzRead(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Read("fuzz.gguf", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.gguf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, ti := range g.Tensors {
			if g.DataOffset+ti.Offset+ti.Size > int64(len(data)) {
				t.Fatalf("tensor %q accepted past the end", ti.Name)
			}
			if _, err := g.TensorData(ti.Name); err != nil {
				t.Fatalf("accepted tensor %q unreadable: %v", ti.Name, err)
			}
		}
	})
}

// fuzzSeeds writes a few valid files (and cut versions of them) for the fuzzer to mutate.
func fuzzSeeds(tb testing.TB) [][]byte {
	dir := tb.TempDir()
	var seeds [][]byte
	files := []struct {
		kvs   []KV
		infos []TensorInfo
	}{
		{[]KV{{"a", uint32(7)}}, []TensorInfo{{Name: "b", Shape: []int{1, 2}, Type: F32}}},
		{[]KV{{"general.architecture", "llama"}, {"tokenizer.ggml.tokens", []string{"<unk>", "▁a"}}, {"s", []float32{1, 2}}, {KeyAlignment, uint32(16)}},
			[]TensorInfo{{Name: "q", Shape: []int{2, 32}, Type: Q4_0}, {Name: "k", Shape: []int{256}, Type: Q6_K}}},
	}
	for i, fl := range files {
		p := filepath.Join(dir, "seed.gguf")
		var data [][]byte
		for _, ti := range fl.infos {
			sz, _ := tensorBytes(ti.Type, ti.Shape)
			data = append(data, make([]byte, sz))
		}
		if err := WriteFile(p, fl.kvs, fl.infos, data); err != nil {
			tb.Fatal(err)
		}
		raw, _ := os.ReadFile(p)
		seeds = append(seeds, raw, raw[:len(raw)/2], raw[:20+i])
	}
	return seeds
}
