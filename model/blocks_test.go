package model

import (
	"slices"
	"testing"

	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookCall is one call of a Hook, with a copy of its input.
type hookCall struct {
	name string
	x    []float32
	m, k int
}

func recorder(calls *[]hookCall) Hook {
	return func(name string, x []float32, M, K int) {
		*calls = append(*calls, hookCall{name, slices.Clone(x), M, K})
	}
}

// Running the blocks in pieces from stored boundary states gives Forward's logits and hook
// inputs bit for bit, for every way of cutting the stack (real model and a GQA toy).
func TestBlockwiseForwardEqualsForward(t *testing.T) {
	t.Run("toy", func(t *testing.T) { checkBlockwise(t, tinyModel(t, tinyConfig(), 7)) })
	t.Run("stories260K", func(t *testing.T) {
		checkBlockwise(t, loadStories(t))
	})
}

func checkBlockwise(t *testing.T, m *Model) {
	t.Helper()
	seqs := [][]int{{1, 5, 9, 3, 7, 11, 2, 8, 13}, {1, 30, 31}, {1, 4, 8, 15, 16, 23, 39}}
	var want []hookCall
	ref, err := m.Forward(seqs, recorder(&want))
	require.NoError(t, err)
	L := m.Blocks()
	require.Equal(t, m.Config.Layers, L)
	cuts := [][]int{{0, L}, {0, 1, L}}
	for b := 0; b <= L; b++ {
		cuts = append(cuts, []int{0, b, b, L}) // empty ranges are fine too
	}
	each := []int{0}
	for b := 1; b <= L; b++ {
		each = append(each, b)
	}
	cuts = append(cuts, each)
	for _, cut := range cuts {
		h, err := m.Embed(seqs)
		require.NoError(t, err)
		var got []hookCall
		for i := 0; i+1 < len(cut); i++ {
			h = h.Clone() // a stored state: what a caller caches between blocks
			require.NoError(t, m.RunBlocks(h, cut[i], cut[i+1], recorder(&got)))
		}
		logits, err := m.Head(h)
		require.NoError(t, err)
		assert.Equal(t, ref, logits, "cut %v", cut)
		assert.Equal(t, want, got, "cut %v", cut)
	}
	assert.Equal(t, []int{9, 3, 7}, mustEmbed(t, m, seqs).Lengths())
}

func mustEmbed(t *testing.T, m *Model, seqs [][]int) *Hidden {
	t.Helper()
	h, err := m.Embed(seqs)
	require.NoError(t, err)
	return h
}

// ProbeBlock shows exactly the hook calls RunBlocks would make in that block, up to the
// named layer, and leaves the state alone.
func TestProbeBlockStopsAtTheLayerAndKeepsTheState(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 8)
	seqs := [][]int{{1, 2, 3, 4, 5, 6}, {1, 9, 10}}
	h := mustEmbed(t, m, seqs)
	require.NoError(t, m.RunBlocks(h, 0, 1, nil))
	var full []hookCall
	require.NoError(t, m.RunBlocks(h.Clone(), 1, 2, recorder(&full)))
	require.Len(t, full, 7)
	before := h.Clone()
	names := m.BlockLinearNames(1)
	assert.Equal(t, m.LinearNames()[7:14], names)
	for i, until := range names {
		var got []hookCall
		require.NoError(t, m.ProbeBlock(h, 1, until, recorder(&got)))
		assert.Equal(t, full[:i+1], got, until)
		assert.Equal(t, before, h, "ProbeBlock must not change the state")
	}
	err := m.ProbeBlock(h, 1, names[0][:len(names[0])-1], nil)
	assert.ErrorContains(t, err, "is not a linear layer of block 1")
	assert.ErrorContains(t, m.ProbeBlock(h, 0, names[0], nil), "not a linear layer of block 0")
	assert.ErrorContains(t, m.ProbeBlock(h, 2, names[0], nil), "block 2 outside [0, 2)")
}

// The boundary state is all a block needs: after a block's layers change, running the
// later blocks from a state stored before the change gives the same bits as a model whose
// earlier blocks never ran, and the change shows up only when the block itself runs again.
func TestBlocksRunFromAStoredStateAfterEarlierLayersChange(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 9)
	seqs := [][]int{{1, 2, 3, 4, 5}}
	h1 := mustEmbed(t, m, seqs)
	require.NoError(t, m.RunBlocks(h1, 0, 1, nil))
	out := h1.Clone()
	require.NoError(t, m.RunBlocks(out, 1, 2, nil))

	q := m.BlockLinearNames(0)[0]
	d := m.Linear(q).(*Dense)
	w := slices.Clone(d.W)
	w[0] += 1
	require.NoError(t, m.SetLinear(q, &Dense{W: w, N: d.N, K: d.K}))
	again := h1.Clone()
	require.NoError(t, m.RunBlocks(again, 1, 2, nil))
	assert.Equal(t, out, again)
	fresh := mustEmbed(t, m, seqs)
	require.NoError(t, m.RunBlocks(fresh, 0, 2, nil))
	assert.NotEqual(t, out.X, fresh.X)
}

func TestBlockAPIErrors(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 10)
	other := tinyConfig()
	other.Dim, other.HiddenDim = 8, 12
	small := tinyModel(t, other, 10)
	h := mustEmbed(t, m, [][]int{{1, 2, 3}})
	assert.ErrorContains(t, m.RunBlocks(h, 1, 0, nil), "blocks [1, 0) outside [0, 2]")
	assert.ErrorContains(t, m.RunBlocks(h, 0, 3, nil), "outside")
	assert.ErrorContains(t, small.RunBlocks(h, 0, 1, nil), "does not come from this model's Embed")
	_, err := small.Head(h)
	assert.ErrorContains(t, err, "does not come from this model's Embed")
	assert.ErrorContains(t, m.RunBlocks(&Hidden{}, 0, 1, nil), "does not come from")
	_, err = m.Embed(nil)
	assert.ErrorContains(t, err, "empty batch")
	_, err = m.Embed([][]int{{1, 99}})
	assert.ErrorContains(t, err, "token id 99 outside the vocabulary")
	assert.Nil(t, m.BlockLinearNames(2))
}

// up_proj and the SiLU product run a chunk of rows at a time (mlpChunkRows): any chunk size
// gives the logits and hook inputs of the unchunked block bit for bit, with full-precision,
// fake-quantized (dynamic int8 inputs) and integer-kernel (W8A8, W4A16) up_proj layers and
// the expf SiLU, on batches taking the packed kernel and its tail rows.
func TestMLPChunksEqualWholeBatch(t *testing.T) {
	defer func(c int) { mlpChunkRows = c }(mlpChunkRows)
	cfg := tinyConfig()
	cfg.HiddenDim = 64
	seqs := [][]int{{1, 5, 9, 3, 7, 2, 11, 4, 6, 8, 10}, {1, 30}, {1, 4, 8, 15, 16, 23, 2}}
	up := "model.layers.1.mlp.up_proj"
	plugs := map[string]func(m *Model) Linear{
		"dense": func(m *Model) Linear { return m.Linear(up) },
		"fake dynamic": func(m *Model) Linear {
			return perChannelFakeQuant(t, up, m.Weight(up+".weight"), 8, quant.ActDynamic)
		},
		"w8a8": func(m *Model) Linear {
			w := m.Weight(up + ".weight")
			l, err := NewQuantLinear(up, w.F32(), nil, w.Shape[0], w.Shape[1], quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{})
			require.NoError(t, err)
			return l
		},
		"w4a16": func(m *Model) Linear {
			w := m.Weight(up + ".weight")
			l, err := NewQuantLinear(up, w.F32(), nil, w.Shape[0], w.Shape[1], quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}, quant.SearchOptions{})
			require.NoError(t, err)
			return l
		},
	}
	for name, plug := range plugs {
		m := tinyModel(t, cfg, 9)
		require.NoError(t, m.SetLinear(up, plug(m)))
		mlpChunkRows = 1 << 20
		var want []hookCall
		ref, err := m.Forward(seqs, recorder(&want))
		require.NoError(t, err)
		for _, c := range []int{1, 3, 4, 7} {
			mlpChunkRows = c
			var got []hookCall
			lg, err := m.Forward(seqs, recorder(&got))
			require.NoError(t, err)
			assert.Equal(t, ref, lg, "%s: chunks of %d rows", name, c)
			assert.Equal(t, want, got, "%s: chunks of %d rows: hook inputs", name, c)
		}
	}
}
