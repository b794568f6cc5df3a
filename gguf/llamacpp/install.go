package llamacpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
)

// Version is the pinned node-llama-cpp version (scripts/llamacpp/install.sh).
const Version = "3.21.1"

// ErrNotInstalled is returned (wrapped) by Find when node or the pinned package is absent.
var ErrNotInstalled = errors.New("llama.cpp (node-llama-cpp) is not installed")

// Install is a located node-llama-cpp installation.
type Install struct {
	Root    string // repository root (holds scripts/llamacpp)
	Node    string // node executable
	Modules string // node_modules directory holding node-llama-cpp
	Lib     string // directory of the prebuilt CPU libraries (libggml-base.so, ...)
}

// Find locates node and the pinned node-llama-cpp under root/.llamacpp, or under
// $AUTOQ_LLAMACPP_DIR when set.
func Find(root string) (*Install, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found on PATH", ErrNotInstalled)
	}
	dir := os.Getenv("AUTOQ_LLAMACPP_DIR")
	if dir == "" {
		dir = filepath.Join(root, ".llamacpp")
	}
	mods := filepath.Join(dir, "node_modules")
	for _, pkg := range []string{"node-llama-cpp", "@node-llama-cpp/linux-x64"} {
		raw, err := os.ReadFile(filepath.Join(mods, pkg, "package.json"))
		if err != nil {
			return nil, fmt.Errorf("%w: %s missing in %s (run scripts/llamacpp/install.sh)", ErrNotInstalled, pkg, mods)
		}
		var p struct{ Version string }
		if err := json.Unmarshal(raw, &p); err != nil || p.Version != Version {
			return nil, fmt.Errorf("%w: %s in %s is version %q, want %s (run scripts/llamacpp/install.sh)", ErrNotInstalled, pkg, mods, p.Version, Version)
		}
	}
	lib := filepath.Join(mods, "@node-llama-cpp", "linux-x64", "bins", "linux-x64")
	if _, err := os.Stat(filepath.Join(lib, "libggml-base.so")); err != nil {
		return nil, fmt.Errorf("%w: no libggml-base.so in %s", ErrNotInstalled, lib)
	}
	return &Install{Root: root, Node: node, Modules: mods, Lib: lib}, nil
}

// Locate finds the installation for a program run from anywhere: the repository root is
// $AUTOQ_ROOT, else the first directory holding scripts/llamacpp/ppl.mjs above the
// working directory or above the executable. ErrNotInstalled (wrapped) when none is found.
func Locate() (*Install, error) {
	if root := os.Getenv("AUTOQ_ROOT"); root != "" {
		return Find(root)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "scripts", "llamacpp", "ppl.mjs")); err == nil {
				return Find(dir)
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return nil, fmt.Errorf("%w: scripts/llamacpp/ppl.mjs not found above the working directory or the executable (set AUTOQ_ROOT to the repository)", ErrNotInstalled)
}

// Perplexity scores windows with llama.cpp (one thread, exact settings: LogProbs) over
// the positions autoq's eval scores: every target except bos. It returns the perplexity
// and the mean negative log-likelihood.
func (in *Install) Perplexity(ctx context.Context, model string, windows [][]int, bos int) (ppl, nll float64, err error) {
	lps, err := in.LogProbs(ctx, model, windows, 1)
	if err != nil {
		return 0, 0, err
	}
	n := 0
	for w, win := range windows {
		for p, lp := range lps[w] {
			if p+1 < len(win) && win[p+1] != bos {
				nll -= lp
				n++
			}
		}
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("llamacpp: %s: no scored positions", model)
	}
	nll /= float64(n)
	return math.Exp(nll), nll, nil
}
