package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	require.NoError(t, WriteFile(p, []byte("one"), 0o644))
	require.NoError(t, WriteFile(p, []byte("two"), 0o600))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left beside the target")
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	require.NoError(t, WriteFile(p, []byte("old"), 0o644))
	boom := errors.New("interrupted")
	err := Write(p, 0o644, func(f *os.File) error {
		_, _ = f.Write([]byte("half-writ"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), p)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1)
}

func TestDirReplacesAtomically(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "model")
	require.NoError(t, Dir(out, "test-kind", func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "a"), []byte("1"), 0o644)
	}))
	// A failing second export leaves the first intact and no temporary directory behind.
	boom := errors.New("disk full")
	err := Dir(out, "test-kind", func(tmp string) error {
		require.NoError(t, os.WriteFile(filepath.Join(tmp, "b"), []byte("2"), 0o644))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, err := os.ReadFile(filepath.Join(out, "a"))
	require.NoError(t, err)
	assert.Equal(t, "1", string(b))
	_, err = os.Stat(filepath.Join(out, "b"))
	assert.True(t, os.IsNotExist(err))
	entries, _ := os.ReadDir(parent)
	assert.Len(t, entries, 1)

	// A successful one replaces the whole directory (old files gone).
	require.NoError(t, Dir(out, "test-kind", func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "c"), []byte("3"), 0o644)
	}))
	_, err = os.Stat(filepath.Join(out, "a"))
	assert.True(t, os.IsNotExist(err))
	_, err = os.Stat(filepath.Join(out, "c"))
	assert.NoError(t, err)
	entries, _ = os.ReadDir(parent)
	assert.Len(t, entries, 1, "the moved-aside old directory is removed")
}
