package model

import (
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HostBlocks is the reference BlockRunner: every block through RunBlock and then Head gives
// Forward's logits and hook inputs bit for bit; a probe (until) leaves the state as it was
// and sees the block's inputs up to that layer's; states clone independently.
func TestHostBlocksEqualsForward(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 11)
	seqs := [][]int{{1, 5, 9, 3, 7}, {1, 30}, {1, 4, 8, 15}}
	var want []hookCall
	ref, err := m.Forward(seqs, recorder(&want))
	require.NoError(t, err)

	r, err := OpenBlockRunner(backend.Device{}, m)
	require.NoError(t, err)
	assert.Equal(t, "cpu", r.Info().Kind)
	st, err := r.Embed(seqs)
	require.NoError(t, err)
	lengths, err := r.Lengths(st)
	require.NoError(t, err)
	assert.Equal(t, []int{5, 2, 4}, lengths)
	var got []hookCall
	for b := 0; b < m.Blocks(); b++ {
		before, err := r.ToHost(st)
		require.NoError(t, err)
		saved := before.Clone()
		names := m.BlockLinearNames(b)
		var probe []hookCall
		require.NoError(t, r.RunBlock(st, b, recorder(&probe), names[3])) // as far as o_proj's input
		after, err := r.ToHost(st)
		require.NoError(t, err)
		assert.Equal(t, saved.X, after.X, "block %d: a probe changed the state", b)
		require.Len(t, probe, 4, "block %d: q, k, v and o inputs", b)
		assert.Equal(t, names[:4], []string{probe[0].name, probe[1].name, probe[2].name, probe[3].name})

		c, err := r.Clone(st)
		require.NoError(t, err)
		require.NoError(t, r.RunBlock(st, b, recorder(&got), ""))
		assert.Equal(t, probe, got[len(got)-7:len(got)-3], "block %d: the probe saw the run's inputs", b)
		ch, err := r.ToHost(c)
		require.NoError(t, err)
		assert.Equal(t, saved.X, ch.X, "block %d: running the state changed its clone", b)
		r.Free(c)
	}
	logits, err := r.Head(st)
	require.NoError(t, err)
	assert.Equal(t, ref, logits)
	assert.Equal(t, want, got)
	require.NoError(t, r.Close())

	_, err = r.Head("not a state")
	assert.ErrorContains(t, err, "not a host *Hidden")
	assert.ErrorContains(t, r.RunBlock(st, 0, nil, "model.layers.9.mlp.down_proj"), "not a linear layer of block 0")
}

// A CUDA device without a registered block runner (this package's tests link no gpurunner)
// is an error that says what is missing, not a crash.
func TestOpenBlockRunnerWithoutCUDA(t *testing.T) {
	_, err := OpenBlockRunner(backend.Device{CUDA: true}, tinyModel(t, tinyConfig(), 1))
	assert.ErrorContains(t, err, "built with -tags cuda")
}

// HeadRows over any cut of a batch's rows gives Head's logits bit for bit (the classifier
// runs the scalar matmul on chunks under 4 rows, the packed one above; float32 and a lazy
// model's 16-bit lm_head), and rejects a range outside the batch.
func TestHeadRowsEqualsHead(t *testing.T) {
	seqs := [][]int{{1, 5, 9, 3, 7, 2, 11, 4, 6}, {1, 30}, {1, 4, 8, 15, 16, 23, 2}}
	lazy, err := NewLazy(tinyConfig(), newMapSource(halfTensors(tinyConfig(), 5, tensor.BF16)), LazyOptions{})
	require.NoError(t, err)
	models := map[string]*Model{"f32": tinyModel(t, tinyConfig(), 5), "bf16 lazy": lazy}
	for name, m := range models {
		r := HostBlocks{M: m}
		st, err := r.Embed(seqs)
		require.NoError(t, err)
		for b := 0; b < m.Blocks(); b++ {
			require.NoError(t, r.RunBlock(st, b, nil, ""))
		}
		whole, err := r.Head(st)
		require.NoError(t, err)
		var want []float32
		for _, lg := range whole {
			want = append(want, lg...)
		}
		rows := len(want) / m.Config.Vocab
		require.Equal(t, 18, rows)
		for _, chunk := range []int{1, 3, 4, 5, 8, 18} {
			var got []float32
			for lo := 0; lo < rows; lo += chunk {
				part, err := r.HeadRows(st, lo, min(lo+chunk, rows))
				require.NoError(t, err)
				require.Len(t, part, (min(lo+chunk, rows)-lo)*m.Config.Vocab)
				got = append(got, part...)
			}
			assert.Equal(t, want, got, "%s: chunks of %d rows", name, chunk)
		}
		for _, bad := range [][2]int{{-1, 2}, {3, 3}, {17, 19}} {
			_, err := r.HeadRows(st, bad[0], bad[1])
			assert.ErrorContains(t, err, "outside the batch's 18 rows", "%s: rows %v", name, bad)
		}
	}
}
