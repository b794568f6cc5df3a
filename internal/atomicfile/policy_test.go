package atomicfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
}

func refused(t *testing.T, err error, want string) {
	t.Helper()
	var pe *PolicyError
	require.True(t, errors.As(err, &pe), "want a policy refusal, got %v", err)
	assert.Contains(t, err.Error(), want)
}

func TestCheckPolicy(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "model")
	write(t, filepath.Join(in, "model.safetensors"), "weights")
	userFile := filepath.Join(root, "notes.txt")
	write(t, userFile, "mine")
	userDir := filepath.Join(root, "mine")
	write(t, filepath.Join(userDir, "a.txt"), "mine")
	ours := filepath.Join(root, "q")
	require.NoError(t, Dir(ours, "quantized", func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "w"), []byte("1"), 0o644)
	}))
	empty := filepath.Join(root, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	inputs := []string{in, filepath.Join(root, "data.txt")}

	dir := func(p string, force bool) error {
		return Check(Target{Flag: "--out", Path: p, Dir: true, Kind: "quantized", Force: force}, inputs)
	}
	file := func(p string, force bool) error {
		return Check(Target{Flag: "--out", Path: p, Force: force}, inputs)
	}
	// Inputs are never outputs, nor inside or around them (even with --force, and through
	// other spellings of the same path).
	refused(t, dir(in, true), "is an input")
	refused(t, dir(in+"/", true), "is an input")
	refused(t, dir(filepath.Join(root, ".", "model"), true), "is an input")
	refused(t, dir(filepath.Join(in, "sub"), true), "inside the input")
	refused(t, dir(root, true), "contains the input")
	link := filepath.Join(root, "link")
	require.NoError(t, os.Symlink(in, link))
	refused(t, dir(link, true), "is an input")
	// Kind mismatches.
	refused(t, dir(userFile, true), "is an existing file")
	refused(t, file(userDir, true), "is an existing directory")
	// Existing outputs.
	refused(t, dir(userDir, false), "give --force")
	refused(t, dir(userDir, true), "not a previous autoq quantized")
	refused(t, dir(ours, false), "holds a previous autoq quantized")
	assert.NoError(t, dir(ours, true))
	refused(t, Check(Target{Flag: "--out", Path: ours, Dir: true, Kind: "export", Force: true}, nil), "not a previous autoq export")
	assert.NoError(t, dir(empty, false), "an empty directory is free")
	refused(t, file(userFile, false), "give --force")
	assert.NoError(t, file(userFile, true))
	assert.NoError(t, dir(filepath.Join(root, "new", "deeper"), false), "missing parents are fine")
	assert.NoError(t, file("", false), "no output")
	// Unwritable places fail before any work (root ignores modes: /proc refuses everyone).
	err := file("/proc/autoq-probe-test", false)
	require.Error(t, err)
	var pe *PolicyError
	assert.False(t, errors.As(err, &pe), "an I/O failure, not a refusal")
	assert.Contains(t, err.Error(), "not writable")
	err = dir(filepath.Join(userFile, "sub"), false)
	assert.ErrorContains(t, err, "is not a directory")
	// Nothing was touched.
	b, _ := os.ReadFile(filepath.Join(userDir, "a.txt"))
	assert.Equal(t, "mine", string(b))
}

func TestDirRefusesForeignDirectories(t *testing.T) {
	root := t.TempDir()
	userDir := filepath.Join(root, "mine")
	write(t, filepath.Join(userDir, "a.txt"), "mine")
	err := Dir(userDir, "quantized", func(tmp string) error { return nil })
	assert.ErrorContains(t, err, "not an autoq quantized")
	b, _ := os.ReadFile(filepath.Join(userDir, "a.txt"))
	assert.Equal(t, "mine", string(b))
	es, _ := os.ReadDir(root)
	assert.Len(t, es, 1, "no temporary left behind")
}

func TestRemoveActiveRemovesAndRestores(t *testing.T) {
	activeMu.Lock()
	removed = nil // what earlier tests in this process removed
	activeMu.Unlock()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	f, err := createTemp(filepath.Join(root, "file.json"))
	require.NoError(t, err)
	f.Close()
	tmpDir, err := MkdirTemp(out)
	require.NoError(t, err)
	// A previous output moved aside mid-replacement comes back.
	prev := filepath.Join(root, "prev")
	write(t, filepath.Join(prev, "w"), "previous")
	aside := filepath.Join(root, ".prev.old")
	require.NoError(t, os.Rename(prev, aside))
	registerAside(aside, prev)
	t.Cleanup(func() {
		activeMu.Lock()
		closing = false
		activeMu.Unlock()
	})
	removed := RemoveActive()
	assert.ElementsMatch(t, []string{f.Name(), tmpDir}, removed)
	b, err := os.ReadFile(filepath.Join(prev, "w"))
	require.NoError(t, err)
	assert.Equal(t, "previous", string(b))
	es, _ := os.ReadDir(root)
	assert.Len(t, es, 1, "only the restored output remains")
	_, err = MkdirTemp(filepath.Join(root, "late"))
	assert.ErrorIs(t, err, errClosing, "no new temporary once the process is exiting")
}

func TestStaleTemporaries(t *testing.T) {
	root := t.TempDir()
	// A process that has exited: its pid is free (until reused, which Stale accepts as a
	// risk only for names and markers autoq itself writes).
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	dead := cmd.Process.Pid
	deadDir := filepath.Join(root, ".out.autoq-tmp-"+strconv.Itoa(dead)+"-123")
	write(t, filepath.Join(deadDir, tempMarker), "{}")
	write(t, filepath.Join(deadDir, "model.safetensors"), "12345")
	deadFile := filepath.Join(root, ".t.json.autoq-tmp-"+strconv.Itoa(dead)+"-9")
	write(t, deadFile, "x")
	noMarker := filepath.Join(root, ".x.autoq-tmp-"+strconv.Itoa(dead)+"-1")
	write(t, filepath.Join(noMarker, "y"), "y")
	emptyDead := filepath.Join(root, ".e.autoq-tmp-"+strconv.Itoa(dead)+"-2")
	require.NoError(t, os.Mkdir(emptyDead, 0o755))
	live, err := MkdirTemp(filepath.Join(root, "live"))
	require.NoError(t, err)
	defer RemoveTemp(live)
	user := filepath.Join(root, ".my.autoq-tmp-notes")
	write(t, user, "mine")

	st, err := Stale(root)
	require.NoError(t, err)
	var paths []string
	for _, s := range st {
		paths = append(paths, s.Path)
		assert.Equal(t, dead, s.PID)
	}
	assert.ElementsMatch(t, []string{deadDir, deadFile, emptyDead}, paths, "this process's, marker-less non-empty and foreign names are not stale")
	removed, err := RemoveStale(root)
	require.NoError(t, err)
	assert.Len(t, removed, 3)
	for _, p := range []string{noMarker, live, user} {
		_, err := os.Stat(p)
		assert.NoError(t, err, p)
	}
	_, err = os.Stat(deadDir)
	assert.True(t, os.IsNotExist(err))
}
