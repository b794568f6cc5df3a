package collect

import (
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Driven one block at a time over stored boundary states (block-major: every batch through
// block b, then block b+1), the Accumulator gives Hessians' bits: same per-layer batches in
// the same order. Shared inputs share one Hessian.
func TestAccumulatorBlockMajorEqualsHessians(t *testing.T) {
	m, seqs := storiesWithRandomTokens(t, 9, 24, 25, 26, 27, 28)
	want, err := Hessians(m, seqs, 2, nil)
	require.NoError(t, err)
	var states []*model.Hidden
	for b0 := 0; b0 < len(seqs); b0 += 2 {
		h, err := m.Embed(seqs[b0:min(b0+2, len(seqs))])
		require.NoError(t, err)
		states = append(states, h)
	}
	for b := 0; b < m.Blocks(); b++ {
		acc := NewAccumulator(m.BlockLinearNames(b))
		for _, h := range states {
			require.NoError(t, m.RunBlocks(h, b, b+1, acc.Hook()))
			acc.EndBatch()
		}
		got, err := acc.Hessians()
		require.NoError(t, err)
		require.Len(t, got, 7)
		for _, name := range m.BlockLinearNames(b) {
			assert.Equal(t, want[name].Sum, got[name].Sum, name)
			assert.Equal(t, want[name].Tokens, got[name].Tokens, name)
		}
		names := m.BlockLinearNames(b)
		assert.Same(t, got[names[0]], got[names[2]], "q and v share the input")
		assert.Same(t, got[names[4]], got[names[5]], "gate and up share the input")
		assert.NotSame(t, got[names[0]], got[names[3]])
		assert.Equal(t, int64(3*64*64+172*172)*8, acc.Bytes(), "q, o, gate and down: one Hessian per input")
	}
	acc := NewAccumulator([]string{"model.layers.0.self_attn.q_proj", "nope"})
	require.NoError(t, m.RunBlocks(states[0], 0, 1, acc.Hook()))
	_, err = acc.Hessians()
	assert.ErrorContains(t, err, "linear layer nope saw no input")
}

// With the CPU GPTQ plugged in, QuantizeModelGPTQWith gives exactly QuantizeModel's GPTQ
// result, and every layer's quantizer sees the fitted scheme and its own Hessian.
func TestQuantizeModelGPTQWithCPUEqualsQuantizeModel(t *testing.T) {
	m, seqs := storiesWithRandomTokens(t, 3, 32, 32, 32, 32)
	hs, err := Hessians(m, seqs, 2, nil)
	require.NoError(t, err)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	opt := gptq.Options{Clip: gptq.ClipMSE}
	want, _, err := QuantizeModel(m, hs, GPTQ, gptq.ClipMSE, s, opt)
	require.NoError(t, err)

	seen := map[string]quant.Scheme{}
	got, reps, err := QuantizeModelGPTQWith(m, hs, s, opt, func(name string, w []float32, rows, cols int, ls quant.Scheme, h *gptq.Hessian, o gptq.Options) (*quant.QTensor, gptq.Report, error) {
		seen[name] = ls
		assert.Same(t, hs[name], h, name)
		return gptq.Quantize(name, w, rows, cols, ls, h, o)
	})
	require.NoError(t, err)
	assert.Len(t, reps, len(m.LinearNames()))
	require.Len(t, got, len(want))
	for name, q := range want {
		assert.Equal(t, q.Levels(), got[name].Levels(), name)
		assert.Equal(t, q.Scales, got[name].Scales, name)
	}
	assert.Equal(t, 43, seen["model.layers.0.mlp.down_proj"].GroupSize, "172 inputs: groups of 43")

	delete(hs, "model.layers.0.self_attn.q_proj")
	_, _, err = QuantizeModelGPTQWith(m, hs, s, opt, gptq.Quantize)
	assert.ErrorContains(t, err, "no Hessian for layer model.layers.0.self_attn.q_proj")
}

// storiesWithRandomTokens loads the shared real model (stories260K) and draws one
// sequence of token ids per length in lens, uniform over the ids above the three special
// tokens.
func storiesWithRandomTokens(t *testing.T, seed uint64, lens ...int) (*model.Model, [][]int) {
	t.Helper()
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	r := testutil.Rand(seed)
	seqs := make([][]int, len(lens))
	for i, n := range lens {
		seqs[i] = make([]int, n)
		for j := range seqs[i] {
			seqs[i][j] = 3 + r.IntN(m.Config.Vocab-3)
		}
	}
	return m, seqs
}

// Sharing is found by value (a copy of the previous input in another buffer shares its
// Hessian), not by buffer: one changed element, or the same values under another shape's
// length, is a new input; EndBatch forgets the previous input.
func TestAccumulatorSharesEqualInputsOnly(t *testing.T) {
	x := testutil.Gaussian(testutil.Rand(5), 4*8, 1)
	hook := func(acc *Accumulator, name string, x []float32, M, K int) { acc.Hook()(name, x, M, K) }
	acc := NewAccumulator(nil)
	hook(acc, "a", x, 4, 8)
	hook(acc, "b", append([]float32(nil), x...), 4, 8) // same values, other buffer
	y := append([]float32(nil), x...)
	y[17] = y[17] + 1
	hook(acc, "c", y, 4, 8)
	hook(acc, "d", y[:16], 2, 8) // a prefix of the previous input
	acc.EndBatch()
	hook(acc, "e", y[:16], 2, 8) // equal to d's input, but in the next batch
	hs, err := acc.Hessians()
	require.NoError(t, err)
	assert.Same(t, hs["a"], hs["b"])
	assert.NotSame(t, hs["b"], hs["c"])
	assert.NotSame(t, hs["c"], hs["d"])
	assert.NotSame(t, hs["d"], hs["e"])
	want, err := gptq.NewHessian(8)
	require.NoError(t, err)
	require.NoError(t, want.Add(x, 4, 8))
	assert.Equal(t, want.Sum, hs["a"].Sum)
}
