package llamacpp

import (
	"encoding/json"
	"errors"
	"fmt"
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
