// Package archtest checks that imports follow the layers docs/ARCHITECTURE.md draws: a
// package may import only packages of its own layer or below (test files excepted), and
// the document names every package.
package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/autoq/autoq/"

// layers lists every package by layer, bottom first: the data path of docs/ARCHITECTURE.md.
var layers = [][]string{
	{"tensor", "internal/atomicfile", "internal/progress", "internal/testutil", "internal/tensorseq"},
	{"safetensors", "tokenizer", "checkpoint", "internal/llamatest"},
	{"quant", "calib", "gptq", "quantfile", "export", "plan", "target", "gguf", "rotate", "synth", "kernels/layout"},
	{"backend", "cgo"},
	{"model", "gpurunner", "eval", "calibrun", "gptq/collect", "awq", "bench", "gguf/llamacpp", "internal/realdata"},
	{"autoquant"},
	{"cmd/autoq"},
}

func layerOf() map[string]int {
	m := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			m[p] = i
		}
	}
	return m
}

// packages maps every package directory of the module to its non-test imports of the
// module (all build tags: cuda-tagged files count too).
func packages(t *testing.T, root string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		if out[rel] == nil {
			out[rel] = map[string]bool{}
		}
		for _, im := range f.Imports {
			if p, ok := strings.CutPrefix(strings.Trim(im.Path.Value, `"`), module); ok {
				out[rel][p] = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestImportsFollowLayers(t *testing.T) {
	root := testutil.RepoRoot(t)
	layer := layerOf()
	pkgs := packages(t, root)
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		lp, ok := layer[p]
		if !assert.True(t, ok, "package %s is in no layer: add it to archtest and docs/ARCHITECTURE.md", p) {
			continue
		}
		for im := range pkgs[p] {
			li, ok := layer[im]
			if assert.True(t, ok, "%s imports %s, which is in no layer", p, im) {
				assert.LessOrEqual(t, li, lp, "%s (layer %d) imports %s (layer %d): imports must point down", p, lp, im, li)
			}
		}
	}
}

func TestArchitectureDocNamesEveryPackage(t *testing.T) {
	root := testutil.RepoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	require.NoError(t, err)
	for _, l := range layers {
		for _, p := range l {
			if !strings.Contains(string(doc), "`"+p+"`") {
				t.Errorf("docs/ARCHITECTURE.md does not name package %s", p)
			}
		}
	}
}
