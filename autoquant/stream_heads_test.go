package autoquant

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heads hands out a batch's logits in pieces of windows, a chunk of rows at a time: for
// any chunk size the pieces come in order, cover every position of every window once and
// hold Forward's logits bit for bit, for each of two streams over the same windows.
func TestHeadsInChunksGiveForwardsLogits(t *testing.T) {
	m := testutil.Must(t, model.Load, testutil.SharedData(t, "stories260K.bin"))
	rng := rand.New(rand.NewPCG(3, 4))
	var wins [][]int
	for _, n := range []int{5, 1, 12, 7, 3, 9, 2} {
		w := make([]int, n)
		for i := range w {
			w[i] = rng.IntN(m.Config.Vocab)
		}
		wins = append(wins, w)
	}
	want, err := m.Forward(wins, nil)
	require.NoError(t, err)
	V := m.Config.Vocab
	ex := &blockExec{m: m, r: model.HostBlocks{M: m}}
	a := newStream("a", ex, wins, 3, 0, "")
	require.NoError(t, a.start())
	for b := 0; b < m.Blocks(); b++ {
		require.NoError(t, a.advance(b, nil))
	}
	c, err := a.fork("b")
	require.NoError(t, err)
	for _, chunk := range []int{1, 4, 5, 13, 1000} {
		got := make([][]float32, len(wins))
		next := [2]int{0, 0} // the window and position the next piece must start at
		err := headsBy([]*stream{a, c}, chunk, func(w, from, to int, lg [][]float32) error {
			require.Equal(t, next, [2]int{w, from}, "chunk %d: pieces in order", chunk)
			require.Less(t, from, to)
			require.LessOrEqual(t, to-from, chunk)
			require.Len(t, lg, 2)
			require.Len(t, lg[0], (to-from)*V)
			assert.Equal(t, lg[0], lg[1], "chunk %d: the two streams' logits", chunk)
			got[w] = append(got[w], lg[0]...)
			next = [2]int{w, to}
			if to == len(wins[w]) {
				next = [2]int{w + 1, 0}
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, [2]int{len(wins), 0}, next, "chunk %d: every window", chunk)
		assert.Equal(t, want, got, "chunk %d", chunk)
	}
	assert.Equal(t, 65, headChunkRows(32000), "8 MiB of a 32000-entry vocabulary")
	assert.Equal(t, 1, headChunkRows(1<<22))
}

// sameFileBytes compares sections of two files piece by piece (over a piece boundary).
func TestSameFileBytes(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	a := testutil.WriteFile(t, dir, "a", append([]byte("head"), data...))
	b := testutil.WriteFile(t, dir, "b", append([]byte("xy"), data...))
	n := int64(len(data))
	same, err := sameFileBytes(safetensors.Section{Path: a, Offset: 4, Size: n}, safetensors.Section{Path: b, Offset: 2, Size: n})
	require.NoError(t, err)
	assert.True(t, same)
	data[2<<20+5]++
	c := testutil.WriteFile(t, dir, "c", data)
	same, err = sameFileBytes(safetensors.Section{Path: a, Offset: 4, Size: n}, safetensors.Section{Path: c, Size: n})
	require.NoError(t, err)
	assert.False(t, same)
	_, err = sameFileBytes(safetensors.Section{Path: a, Offset: 4, Size: n + 1}, safetensors.Section{Path: a, Offset: 4, Size: n + 1})
	assert.Error(t, err, "past the end of a")
	_, err = sameFileBytes(safetensors.Section{Path: a, Size: n}, safetensors.Section{Path: filepath.Join(dir, "none"), Size: n})
	assert.Error(t, err)
}
