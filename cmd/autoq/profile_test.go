package main

import (
	"bytes"
	"os"
	"path/filepath"
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
