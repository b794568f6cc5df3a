package atomicfile

import (
	"os"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPendingCommitReplacesAndAbortKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := testutil.WriteFile(t, dir, "model.gguf", []byte("old"))

	w, err := Create(p, 0o644)
	require.NoError(t, err)
	_, err = w.Write([]byte("half"))
	require.NoError(t, err)
	w.Abort()
	w.Abort() // idempotent
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b), "an aborted write leaves the target as it was")

	w, err = Create(p, 0o600)
	require.NoError(t, err)
	_, err = w.Write([]byte("new"))
	require.NoError(t, err)
	b, _ = os.ReadFile(p)
	assert.Equal(t, "old", string(b), "nothing replaced before Commit")
	require.NoError(t, w.Commit())
	require.NoError(t, w.Commit()) // idempotent
	b, _ = os.ReadFile(p)
	assert.Equal(t, "new", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left")
}
