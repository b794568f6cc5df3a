package safetensors

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to the parser behind Open (parse, on the bytes Open maps):
// it must return a File or an error naming the file, never panic; every tensor of a File it
// accepts must be readable within the file's bounds, and writing the accepted tensors and
// metadata again (when the writer allows their names and dtypes) must give a file that reads
// back the same. The seed corpus lives in testdata/fuzz/FuzzOpen (valid, truncated, bad
// JSON, overlapping offsets, ...) and below; run
// `go test -run '^$' -fuzz '^FuzzOpen$' -parallel 1 ./safetensors` to explore further.
func FuzzOpen(f *testing.F) {
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"format":"pt","k":"v"},"a":{"dtype":"F16","shape":[1,3],"data_offsets":[0,6]},`+
		`"b":{"dtype":"BF16","shape":[],"data_offsets":[6,8]},"e":{"dtype":"I8","shape":[0,4],"data_offsets":[8,8]},`+
		`"c":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}`, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
	f.Add(rawFile(`{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}   `, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"n":1}}`, nil))
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, nil))
	f.Add([]byte{1, 2, 3})
	const name = "fuzz/model.safetensors"
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parse(name, data)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// sf views data (no mapping): never Close it.
		var ts []NamedTensor
		var total int64
		for _, n := range sf.Names() {
			tt, err := sf.Tensor(n)
			if err != nil {
				t.Fatalf("accepted file but tensor %q unreadable: %v", n, err)
			}
			for _, b := range tt.Data { // touch every byte: must stay inside the file
				total += int64(b)
			}
			ts = append(ts, NamedTensor{Name: n, T: tt})
		}
		_ = total
		img, ok := image(ts, sf.Metadata())
		if !ok {
			return
		}
		back, err := parse("rewritten", img)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if !slices.Equal(back.Names(), sf.Names()) || !maps.Equal(back.Metadata(), sf.Metadata()) {
			t.Fatalf("rewritten file has tensors %q and metadata %v, want %q and %v", back.Names(), back.Metadata(), sf.Names(), sf.Metadata())
		}
		for _, nt := range ts {
			bt, err := back.Tensor(nt.Name)
			if err != nil || bt.DType != nt.T.DType || !slices.Equal(bt.Shape, nt.T.Shape) || !bytes.Equal(bt.Data, nt.T.Data) {
				t.Fatalf("tensor %q changed on rewriting (%v)", nt.Name, err)
			}
		}
	})
}

// image renders tensors and metadata as WriteFile lays them out, in memory; false when the
// writer refuses a name or dtype.
func image(ts []NamedTensor, meta map[string]string) ([]byte, bool) {
	infos := make([]TensorInfo, len(ts))
	var off int64
	var data []byte
	for i, nt := range ts {
		if nt.Name == "" || nt.Name == metadataKey || checkWritable(nt.T.DType) != nil {
			return nil, false
		}
		infos[i] = TensorInfo{Name: nt.Name, DType: nt.T.DType, Shape: nt.T.Shape, Offset: off, Size: int64(len(nt.T.Data))}
		off += int64(len(nt.T.Data))
		data = append(data, nt.T.Data...)
	}
	hdr, err := encodeHeader(infos, meta)
	if err != nil {
		return nil, false
	}
	img := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(img, hdr...), data...), true
}
