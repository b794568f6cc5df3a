package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// AUTOQ_CPUPROFILE writes a new file and never replaces one the user had.
func TestStartProfileNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	fresh := filepath.Join(dir, "cpu.prof")
	startProfile(fresh, &log)()
	st, err := os.Stat(fresh)
	require.NoError(t, err)
	assert.Positive(t, st.Size(), "a profile was written")
	assert.Empty(t, log.String())

	mine := filepath.Join(dir, "mine.txt")
	require.NoError(t, os.WriteFile(mine, []byte("keep me"), 0o644))
	startProfile(mine, &log)()
	b, err := os.ReadFile(mine)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	assert.Contains(t, log.String(), "AUTOQ_CPUPROFILE")
	assert.Contains(t, log.String(), "exists")
}

// AUTOQ_MEMPROFILE writes the heap profile of the largest live heap to a new file and
// never replaces one the user had.
func TestStartMemProfileNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	fresh := filepath.Join(dir, "heap.prof")
	stop := startMemProfile(fresh, &log)
	keep := make([]byte, 8<<20) // live across a GC: the profile has a sample
	runtime.GC()
	stop()
	runtime.KeepAlive(keep)
	b, err := os.ReadFile(fresh)
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(b)) // pprof's format: a gzipped protobuf
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "inuse_space", "a heap profile")
	assert.Empty(t, log.String())

	mine := filepath.Join(dir, "mine.txt")
	require.NoError(t, os.WriteFile(mine, []byte("keep me"), 0o644))
	startMemProfile(mine, &log)()
	b, err = os.ReadFile(mine)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	assert.Contains(t, log.String(), "AUTOQ_MEMPROFILE")
	assert.Contains(t, log.String(), "exists")
}
