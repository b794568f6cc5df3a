package safetensors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/tensor"
)

// benchFile writes a checkpoint of 16 F32 matrices of 1024x1024 (64 MiB) once per run.
func benchFile(b *testing.B) (string, []string) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.safetensors")
	var ts []NamedTensor
	var names []string
	for i := 0; i < 16; i++ {
		n := "layer" + string(rune('a'+i)) + ".weight"
		ts = append(ts, NamedTensor{Name: n, T: tensor.New(tensor.F32, 1024, 1024)})
		names = append(names, n)
	}
	if err := WriteFile(p, ts, nil); err != nil {
		b.Fatal(err)
	}
	return p, names
}

// BenchmarkOpenAllTensors opens the file and gets a view of every tensor (mmap, no copy).
// Its MB/s counts bytes made available, not bytes read: pages load when first touched.
func BenchmarkOpenAllTensors(b *testing.B) {
	p, names := benchFile(b)
	b.SetBytes(64 << 20)
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if _, err := f.Tensor(n); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}

// BenchmarkReadFileBaseline is the copying alternative: read the whole file into memory.
func BenchmarkReadFileBaseline(b *testing.B) {
	p, _ := benchFile(b)
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFile measures the streaming writer (temp file, fsync, rename).
func BenchmarkWriteFile(b *testing.B) {
	dir := b.TempDir()
	ts := []NamedTensor{{Name: "w", T: tensor.New(tensor.F32, 1024, 4096)}}
	b.SetBytes(16 << 20)
	for b.Loop() {
		if err := WriteFile(filepath.Join(dir, "w.safetensors"), ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}
