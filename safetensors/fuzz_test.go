package safetensors

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open: it must return a File or an error, never panic,
// and every tensor of a File it accepts must be readable within the file's bounds. The seed
// corpus lives in testdata/fuzz/FuzzOpen (valid, truncated, bad JSON, overlapping offsets,
// ...); run `go test -fuzz FuzzOpen ./safetensors` to explore further.
func FuzzOpen(f *testing.F) {
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, err := Open(p)
		if err != nil {
			return
		}
		defer sf.Close()
		var total int64
		for _, n := range sf.Names() {
			tt, err := sf.Tensor(n)
			if err != nil {
				t.Fatalf("accepted file but tensor %q unreadable: %v", n, err)
			}
			for _, b := range tt.Data { // touch every byte: must stay inside the mapping
				total += int64(b)
			}
		}
		_ = total
	})
}
