package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapSource is a TensorSource over a map that counts reads and releases.
type mapSource struct {
	ts       map[string]*tensor.Tensor
	reads    map[string]int
	released map[string]int
}

func newMapSource(ts map[string]*tensor.Tensor) *mapSource {
	return &mapSource{ts: ts, reads: map[string]int{}, released: map[string]int{}}
}

func (s *mapSource) Tensor(name string) (*tensor.Tensor, error) {
	t, ok := s.ts[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	s.reads[name]++
	return t, nil
}

func (s *mapSource) release(names []string) {
	for _, n := range names {
		s.released[n]++
	}
}

// oneBlockLazy is a lazy tiny model (random weights from seed) with room for one block.
func oneBlockLazy(t *testing.T, cfg checkpoint.LlamaConfig, seed uint64) *Model {
	t.Helper()
	m, err := NewLazy(cfg, newMapSource(randomTensors(cfg, seed)), LazyOptions{MaxBlockBytes: tinyModel(t, cfg, seed).BlockBytes(0)})
	require.NoError(t, err)
	return m
}

// perChannelFakeQuant is layer name's weights w quantized per channel (symmetric, bits) as
// a FakeQuant layer with activation mode act.
func perChannelFakeQuant(t *testing.T, name string, w *tensor.Tensor, bits int, act quant.ActMode) *FakeQuant {
	t.Helper()
	q, err := quant.Quantize(name, w.F32(), w.Shape[0], w.Shape[1], quant.Scheme{Bits: bits, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{})
	require.NoError(t, err)
	fq, err := NewFakeQuant(q, nil, act, 0)
	require.NoError(t, err)
	return fq
}

// A lazy model gives New's logits and hook inputs bit for bit, with every block resident
// or with room for one block only (each block then read again at every use).
func TestLazyEqualsNew(t *testing.T) {
	cfg, ts := readStories(t, false)
	full, err := New(cfg, ts)
	require.NoError(t, err)
	seqs := [][]int{{1, 5, 9, 3, 7, 11, 2, 8, 13}, {1, 300, 31}}
	var want []hookCall
	ref, err := full.Forward(seqs, recorder(&want))
	require.NoError(t, err)
	for _, budget := range []int64{0, full.BlockBytes(0), 2*full.BlockBytes(0) + 1} {
		src := newMapSource(ts)
		m, err := NewLazy(cfg, src, LazyOptions{MaxBlockBytes: budget, Release: src.release})
		require.NoError(t, err)
		res, _ := m.ResidentBlocks()
		assert.Empty(t, res, "nothing read before use")
		for pass := 0; pass < 2; pass++ {
			var got []hookCall
			lg, err := m.Forward(seqs, recorder(&got))
			require.NoError(t, err)
			assert.Equal(t, ref, lg, "budget %d pass %d", budget, pass)
			assert.Equal(t, want, got)
		}
		res, loads := m.ResidentBlocks()
		switch budget {
		case 0:
			assert.Equal(t, []int{0, 1, 2, 3, 4}, res)
			assert.Equal(t, 5, loads, "each block read once")
		case full.BlockBytes(0):
			assert.Equal(t, []int{4}, res)
			assert.Equal(t, 10, loads, "every block read at every pass")
		default:
			assert.Equal(t, []int{3, 4}, res)
		}
		q := "model.layers.2.self_attn.q_proj.weight"
		assert.Equal(t, loads/5, src.reads[q])
		assert.Equal(t, src.reads[q], src.released[q], "every converted tensor released")
		assert.Equal(t, 1, src.reads["model.embed_tokens.weight"])
	}
}

// A plugged layer stays plugged when its block is released and read again; Weight and
// Linear read the block they name; ResetLinears drops the plugs.
func TestLazyKeepsPluggedLayers(t *testing.T) {
	cfg := tinyConfig()
	m := oneBlockLazy(t, cfg, 3)
	name := "model.layers.0.mlp.down_proj"
	w := m.Weight(name + ".weight")
	require.NotNil(t, w, "Weight reads the block")
	fq := perChannelFakeQuant(t, name, w, 4, quant.ActNone)
	require.NoError(t, m.SetLinear(name, fq))

	full := tinyModel(t, cfg, 3)
	require.NoError(t, full.SetLinear(name, fq))
	seqs := [][]int{{1, 2, 3, 4, 5}}
	want, err := full.Forward(seqs, nil)
	require.NoError(t, err)
	got, err := m.Forward(seqs, nil) // block 1 evicts block 0, then block 0 is read again
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Same(t, fq, m.Linear(name))
	res, _ := m.ResidentBlocks()
	assert.Equal(t, []int{0}, res, "Linear read block 0 back")

	m.ResetLinears()
	fp, err := tinyModel(t, cfg, 3).Forward(seqs, nil)
	require.NoError(t, err)
	got, err = m.Forward(seqs, nil)
	require.NoError(t, err)
	assert.Equal(t, fp, got)
	assert.IsType(t, &Dense{}, m.Linear(name))
}

// The layers a LazyOptions.Linear supplies replace the checkpoint weights, which are then
// not read.
func TestLazyLinearOption(t *testing.T) {
	cfg := tinyConfig()
	ts := randomTensors(cfg, 4)
	name := "model.layers.1.self_attn.o_proj"
	fq := perChannelFakeQuant(t, name, ts[name+".weight"], 8, quant.ActDynamic)
	src := newMapSource(ts)
	m, err := NewLazy(cfg, src, LazyOptions{Linear: func(n string) (Linear, error) {
		if n == name {
			return fq, nil
		}
		return nil, nil
	}})
	require.NoError(t, err)
	full := tinyModel(t, cfg, 4)
	require.NoError(t, full.SetLinear(name, fq))
	assertSameLogits(t, full, m)
	assert.Zero(t, src.reads[name+".weight"])
}

// A block larger than the budget, a missing tensor and a non-finite weight are errors
// naming the block or the tensor.
func TestLazyErrors(t *testing.T) {
	cfg := tinyConfig()
	per := tinyModel(t, cfg, 5).BlockBytes(0)
	_, err := NewLazy(cfg, newMapSource(randomTensors(cfg, 5)), LazyOptions{MaxBlockBytes: per - 1})
	var bm *BlockMemoryError
	require.ErrorAs(t, err, &bm)
	assert.Equal(t, 0, bm.Block)
	assert.Equal(t, per, bm.Need)
	assert.Contains(t, err.Error(), "decoder block 0 (model.layers.0.*) needs")

	ts := randomTensors(cfg, 5)
	delete(ts, "model.layers.1.mlp.up_proj.weight")
	m, err := NewLazy(cfg, newMapSource(ts), LazyOptions{})
	require.NoError(t, err, "block tensors are read on use")
	_, err = m.Forward([][]int{{1, 2}}, nil)
	assert.ErrorContains(t, err, "missing tensor model.layers.1.mlp.up_proj.weight")

	ts = randomTensors(cfg, 5)
	bad := ts["model.layers.0.self_attn.k_proj.weight"].F32()
	bad[3] = float32(math.Inf(1))
	ts["model.layers.0.self_attn.k_proj.weight"] = tensor.FromF32(bad, 8, 16)
	m, err = NewLazy(cfg, newMapSource(ts), LazyOptions{})
	require.NoError(t, err)
	err = m.LoadBlock(0)
	assert.ErrorContains(t, err, "tensor model.layers.0.self_attn.k_proj.weight has a non-finite value +Inf at element 3")
	assert.Nil(t, m.Linear("model.layers.0.self_attn.k_proj"))

	delete(ts, "model.embed_tokens.weight")
	_, err = NewLazy(cfg, newMapSource(ts), LazyOptions{})
	assert.ErrorContains(t, err, "missing tensor model.embed_tokens.weight")
}

// ResetLinear restores one layer's full-precision weights, which a lazy model then drops
// with its block again (no plugged copy outlives the block).
func TestLazyResetLinear(t *testing.T) {
	cfg := tinyConfig()
	m := oneBlockLazy(t, cfg, 6)
	name := "model.layers.0.self_attn.v_proj"
	w := m.Weight(name + ".weight")
	require.NoError(t, m.SetLinear(name, perChannelFakeQuant(t, name, w, 4, quant.ActNone)))
	require.NoError(t, m.ResetLinear(name))
	d, ok := m.Linear(name).(*Dense)
	require.True(t, ok)
	assert.Equal(t, w.F32(), d.W)
	require.NoError(t, m.LoadBlock(1)) // evicts block 0: nothing of it stays plugged
	assert.Nil(t, m.layers[0].lin[2])
	seqs := [][]int{{1, 2, 3}}
	want, err := tinyModel(t, cfg, 6).Forward(seqs, nil)
	require.NoError(t, err)
	got, err := m.Forward(seqs, nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Error(t, m.ResetLinear("nope"))
}

// Reuse shares another model's embedding, final norm and lm_head: the source's copies are
// never read, the logits are the same, and a reused slice of the wrong size is an error.
func TestLazyReuseSharesFixedTensors(t *testing.T) {
	cfg := tinyConfig()
	full := tinyModel(t, cfg, 4)
	src := newMapSource(randomTensors(cfg, 4))
	m, err := NewLazy(cfg, src, LazyOptions{Reuse: full.FixedTensor})
	require.NoError(t, err)
	for _, n := range []string{"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"} {
		if full.FixedTensor(n) == nil {
			continue // tied embeddings: no separate lm_head
		}
		assert.Zero(t, src.reads[n], n)
		assert.Same(t, &full.FixedTensor(n).Data[0], &m.FixedTensor(n).Data[0], n)
	}
	assert.Nil(t, full.FixedTensor("model.layers.0.self_attn.q_proj.weight"))
	assertSameLogits(t, full, m)

	_, err = NewLazy(cfg, src, LazyOptions{Reuse: func(string) *tensor.Tensor { return tensor.FromF32([]float32{1}, 1) }})
	require.ErrorContains(t, err, "reused model.embed_tokens.weight has shape [1]")
}

// assertSameLogits checks that two models give the same logits on one short sequence.
func assertSameLogits(t *testing.T, want, got *Model) {
	t.Helper()
	seqs := [][]int{{1, 2, 3, 4, 5, 6}}
	w, err := want.Forward(seqs, nil)
	require.NoError(t, err)
	g, err := got.Forward(seqs, nil)
	require.NoError(t, err)
	assert.Equal(t, w, g)
}
