package safetensors

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mappedRSS is the resident size in kB of this process's mappings of path (/proc/self/smaps).
func mappedRSS(t *testing.T, path string) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, kb := false, 0
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path // a mapping's header line
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			require.NoError(t, err)
			kb += n
		}
	}
	return kb
}

// Release drops a tensor's pages from the process (not its data: reading it again gives
// the same bytes); neighbours' partial pages are kept.
func TestReleaseDropsPages(t *testing.T) {
	const n = 1 << 20 // 4 MiB of F32
	a, b := make([]float32, n), make([]float32, 100)
	for i := range a {
		a[i] = float32(i)
	}
	for i := range b {
		b[i] = float32(-i)
	}
	path := filepath.Join(t.TempDir(), "r.safetensors")
	require.NoError(t, WriteFile(path, []NamedTensor{{Name: "a", T: tensor.FromF32(a, n)}, {Name: "b", T: tensor.FromF32(b, 100)}}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	ta, err := f.Tensor("a")
	require.NoError(t, err)
	var sum float64
	for _, v := range ta.F32() {
		sum += float64(v)
	}
	require.Equal(t, float64(n)*(n-1)/2, sum)
	before := mappedRSS(t, path)
	require.Greater(t, before, 4000, "the tensor was paged in")
	require.NoError(t, f.Release("a"))
	after := mappedRSS(t, path)
	assert.Less(t, after, 16, "released pages left the process (was %d kB)", before)
	again, err := f.Tensor("a")
	require.NoError(t, err)
	assert.Equal(t, a, again.F32())
	tb, err := f.Tensor("b")
	require.NoError(t, err)
	assert.Equal(t, b, tb.F32())
	assert.ErrorContains(t, f.Release("c"), `no tensor "c"`)
	require.NoError(t, f.Close())
	assert.NoError(t, f.Release("a"), "after Close: nothing to release")
}
