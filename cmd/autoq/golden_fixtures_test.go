package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// goldenCommand runs the commands golden files use to look at outputs and to build bad
// inputs. Each prints what it did (or "error: ..."), so the transcript shows the fixture:
//
//	cat FILE                 the file's contents
//	ls DIR                   the tree below DIR, one path per line ("d/" for directories)
//	write FILE TEXT...       TEXT (with \n and \t escapes) into FILE
//	copy SRC DST [N]         SRC into DST, only the first N bytes when N is given
//	mkdir DIR                a directory (and its parents)
//	cpdir SRC DST            a copy of the directory SRC (files only, one level)
//	chmod MODE PATH          octal MODE on PATH
//	fixture KIND PATH        a generated bad input: nan-weights, zero-channel, binary
//	                         (random bytes), missing-shard (an index naming an absent shard)
func goldenCommand(t *testing.T, args []string) (string, bool) {
	errOut := func(err error) string { return "error: " + err.Error() }
	switch args[0] {
	case "cat":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return errOut(err), true
		}
		return string(b), true
	case "ls":
		var names []string
		err := filepath.WalkDir(args[1], func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == args[1] {
				return nil
			}
			rel, _ := filepath.Rel(args[1], p)
			if d.IsDir() {
				rel += "/"
			}
			names = append(names, rel)
			return nil
		})
		if err != nil {
			return errOut(err), true
		}
		return strings.Join(names, "\n"), true
	case "write":
		text := strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(strings.Join(args[2:], " "))
		if err := os.WriteFile(args[1], []byte(text), 0o644); err != nil {
			return errOut(err), true
		}
		return fmt.Sprintf("wrote %d bytes", len(text)), true
	case "copy":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return errOut(err), true
		}
		if len(args) > 3 {
			n, err := strconv.Atoi(args[3])
			if err != nil || n > len(b) {
				t.Fatalf("golden: copy: bad length %q", args[3])
			}
			b = b[:n]
		}
		if err := os.WriteFile(args[2], b, 0o644); err != nil {
			return errOut(err), true
		}
		return fmt.Sprintf("copied %d bytes", len(b)), true
	case "mkdir":
		if err := os.MkdirAll(args[1], 0o755); err != nil {
			return errOut(err), true
		}
		return "", true
	case "cpdir":
		if err := os.MkdirAll(args[2], 0o755); err != nil {
			return errOut(err), true
		}
		es, err := os.ReadDir(args[1])
		if err != nil {
			return errOut(err), true
		}
		for _, e := range es {
			b, err := os.ReadFile(filepath.Join(args[1], e.Name()))
			if err != nil {
				return errOut(err), true
			}
			if err := os.WriteFile(filepath.Join(args[2], e.Name()), b, 0o644); err != nil {
				return errOut(err), true
			}
		}
		return fmt.Sprintf("copied %d files", len(es)), true
	case "chmod":
		mode, err := strconv.ParseUint(args[1], 8, 32)
		if err != nil {
			t.Fatalf("golden: chmod: bad mode %q", args[1])
		}
		if err := os.Chmod(args[2], os.FileMode(mode)); err != nil {
			return errOut(err), true
		}
		return "", true
	case "fixture":
		if err := writeBadFixture(args[1], args[2]); err != nil {
			return errOut(err), true
		}
		return "", true
	}
	return "", false
}

// writeBadFixture writes one generated bad input.
func writeBadFixture(kind, path string) error {
	r := rand.New(rand.NewPCG(7, 7))
	mat := func(rows, cols int) *tensor.Tensor {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.1)
		}
		return tensor.FromF32(v, rows, cols)
	}
	switch kind {
	case "binary":
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return os.WriteFile(path, b, 0o644)
	case "nan-weights", "zero-channel":
		w := mat(16, 32)
		f := w.F32()
		if kind == "nan-weights" {
			f[5*32+3] = float32(math.NaN())
		} else {
			for c := 0; c < 32; c++ {
				f[2*32+c] = 0
			}
		}
		w = tensor.FromF32(f, 16, 32)
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		return safetensors.WriteFile(filepath.Join(path, "model.safetensors"), []safetensors.NamedTensor{
			{Name: "model.layers.0.self_attn.q_proj.weight", T: w},
			{Name: "model.layers.0.mlp.up_proj.weight", T: mat(64, 32)},
		}, nil)
	case "missing-shard":
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		if err := safetensors.WriteFile(filepath.Join(path, "model-00001-of-00002.safetensors"), []safetensors.NamedTensor{
			{Name: "model.layers.0.self_attn.q_proj.weight", T: mat(16, 32)},
		}, nil); err != nil {
			return err
		}
		idx := `{"metadata": {}, "weight_map": {"model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors", "model.layers.0.mlp.up_proj.weight": "model-00002-of-00002.safetensors"}}`
		return os.WriteFile(filepath.Join(path, "model.safetensors.index.json"), []byte(idx), 0o644)
	}
	return fmt.Errorf("unknown fixture %q", kind)
}
