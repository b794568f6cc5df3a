package atomicfile

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamInput is n pseudo-random bytes.
func streamInput(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A Stream's file holds exactly the bytes written, in pieces of every awkward size
// (around the alignment and the block) and copied from another file, with direct writes
// and through the page cache.
func TestStreamWritesExactBytes(t *testing.T) {
	dir := t.TempDir()
	src := streamInput(4*streamBlock, 2)
	srcPath := testutil.WriteFile(t, dir, "src.bin", src)
	pieces := []int{0, 1, 7, blockAlign - 1, blockAlign, blockAlign + 1, streamBlock - 3, streamBlock, streamBlock + 5, 100}
	for _, direct := range []bool{true, false} {
		for i, tail := range []int{0, 1, blockAlign, 333} {
			hint := []int64{0, 3*streamBlock + 1, 64 << 10, 50 << 20}[i] // wrong hints change nothing
			s, err := CreateStream(filepath.Join(dir, "out.bin"), 0o644, hint)
			require.NoError(t, err)
			if !direct {
				require.NoError(t, setDirect(s.p.File, false))
				s.direct = false
			} else if runtime.GOOS == "linux" {
				assert.True(t, s.Direct(), "ext4 and tmpfs (Linux >= 6.6) take O_DIRECT")
			}
			var want []byte
			off := 0
			for i, n := range pieces {
				b := src[off : off+n]
				off += n
				if i%3 == 2 { // some pieces copied file to file
					require.NoError(t, s.CopyFrom(mustOpen(t, srcPath), int64(off-n), int64(n)))
				} else {
					k, err := s.Write(b)
					require.NoError(t, err)
					require.Equal(t, n, k)
				}
				want = append(want, b...)
			}
			_, err = s.Write(src[:tail])
			require.NoError(t, err)
			want = append(want, src[:tail]...)
			assert.Equal(t, int64(len(want)), s.Size())
			require.NoError(t, s.Commit())
			got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
			require.NoError(t, err)
			require.Equal(t, len(want), len(got), "direct %v, tail %d", direct, tail)
			assert.True(t, string(want) == string(got), "direct %v, tail %d: bytes differ", direct, tail)
		}
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestStreamEmptyAbortAndShortSource(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	s, err := CreateStream(out, 0o600, 0)
	require.NoError(t, err)
	require.NoError(t, s.Commit())
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.Size())
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	require.NoError(t, os.WriteFile(out, []byte("old"), 0o644))
	s, err = CreateStream(out, 0o644, 5)
	require.NoError(t, err)
	_, err = s.Write(streamInput(streamBlock+10, 3))
	require.NoError(t, err)
	s.Abort()
	b, _ := os.ReadFile(out)
	assert.Equal(t, "old", string(b), "an aborted stream leaves the target as it was")
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "and no temporary file")

	src := testutil.WriteFile(t, dir, "short.bin", []byte("0123456789"))
	s, err = CreateStream(out, 0o644, 5)
	require.NoError(t, err)
	err = s.CopyFrom(mustOpen(t, src), 4, 10)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, int64(6), s.Size(), "the bytes that were there")
	s.Abort()
}
