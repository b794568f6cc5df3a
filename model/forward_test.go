package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCausalMaskLaterTokensDoNotChangeEarlierLogits(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 1)
	a := []int{1, 5, 9, 3, 7, 11, 2, 8}
	b := append([]int(nil), a...)
	b[5], b[6], b[7] = 30, 31, 32
	la, err := m.Forward([][]int{a}, nil)
	require.NoError(t, err)
	lb, err := m.Forward([][]int{b}, nil)
	require.NoError(t, err)
	V := m.Config.Vocab
	assert.Equal(t, la[0][:5*V], lb[0][:5*V], "positions 0..4 must not see tokens 5..7")
	assert.NotEqual(t, la[0][5*V:6*V], lb[0][5*V:6*V])
}

// GQA: a model whose kv heads are shared by groups of query heads must equal the
// multi-head model whose k/v weights repeat each kv head for its group (HF's repeat_kv).
func TestGQAEqualsMultiHeadWithRepeatedKVHeads(t *testing.T) {
	cfg := tinyConfig() // 4 heads, 2 kv heads: heads 0,1 -> kv 0; heads 2,3 -> kv 1
	ts := randomTensors(cfg, 2)
	gqa, err := New(cfg, ts)
	require.NoError(t, err)
	mha := cfg
	mha.KVHeads = cfg.Heads
	ts2 := map[string]*tensor.Tensor{}
	for k, v := range ts {
		ts2[k] = v
	}
	hd, D := cfg.HeadDim(), cfg.Dim
	for l := 0; l < cfg.Layers; l++ {
		for _, p := range []string{"k_proj", "v_proj"} {
			name := fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, p)
			w := ts[name].F32()
			rep := make([]float32, 0, D*D)
			for h := 0; h < cfg.Heads; h++ {
				kv := h / (cfg.Heads / cfg.KVHeads)
				rep = append(rep, w[kv*hd*D:(kv+1)*hd*D]...)
			}
			ts2[name] = tensor.FromF32(rep, D, D)
		}
	}
	full, err := New(mha, ts2)
	require.NoError(t, err)
	seq := [][]int{{1, 4, 8, 15, 16, 23, 39}}
	lg, err := gqa.Forward(seq, nil)
	require.NoError(t, err)
	lf, err := full.Forward(seq, nil)
	require.NoError(t, err)
	assert.Equal(t, lf[0], lg[0])
}

func TestRaggedBatchEqualsSeparateSequences(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 3)
	seqs := [][]int{{1, 2, 3, 4, 5, 6, 7}, {1, 9}, {1, 30, 31, 32, 33}}
	batch, err := m.Forward(seqs, nil)
	require.NoError(t, err)
	for i, s := range seqs {
		one, err := m.Forward([][]int{s}, nil)
		require.NoError(t, err)
		assert.Equal(t, one[0], batch[i], "sequence %d", i)
	}
}

func TestForwardIsDeterministic(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 4)
	seqs := [][]int{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	a, err := m.Forward(seqs, nil)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		b, err := m.Forward(seqs, nil)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
}

// llama2.c's interleaved RoPE on the file's own q/k rows and HF's rotate_half on the
// permuted rows are the same function: the logits agree on the real model.
func TestInterleavedRopeOnRawWeightsEqualsHalfSplitOnPermuted(t *testing.T) {
	hf := loadStories(t)
	cfg, raw := readStories(t, true)
	il, err := New(cfg, raw)
	require.NoError(t, err)
	il.interleaved = true
	ids := readGreedyRef(t)
	seq := [][]int{append([]int{1}, ids[:100]...)}
	a, err := hf.Forward(seq, nil)
	require.NoError(t, err)
	b, err := il.Forward(seq, nil)
	require.NoError(t, err)
	// Not bitwise: the q/k dot products add the same terms in another order (logits are
	// O(10); float32 rounding of 64-term sums gives differences of order 1e-5).
	assert.Less(t, maxAbsDiff(a[0], b[0]), 1e-4)
	V := hf.Config.Vocab
	for p := range seq[0] {
		require.Equal(t, testutil.Argmax(a[0][p*V:(p+1)*V]), testutil.Argmax(b[0][p*V:(p+1)*V]))
	}
	// And the permutation matters: HF RoPE on unpermuted rows is a different model.
	il.interleaved = false
	c, err := il.Forward(seq, nil)
	require.NoError(t, err)
	assert.Greater(t, maxAbsDiff(a[0], c[0]), 1e-2)
}

func TestHookSeesEveryLinearInputInOrder(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 5)
	var names []string
	var ks []int
	var inputs [][]float32
	seqs := [][]int{{1, 2, 3}, {1, 4}}
	_, err := m.Forward(seqs, func(name string, x []float32, M, K int) {
		names = append(names, name)
		ks = append(ks, K)
		inputs = append(inputs, append([]float32(nil), x...))
		assert.Equal(t, 5, M)
		assert.Len(t, x, M*K)
	})
	require.NoError(t, err)
	assert.Equal(t, m.LinearNames(), names)
	assert.Equal(t, "model.layers.1.mlp.down_proj", names[len(names)-1])
	assert.Equal(t, m.Config.HiddenDim, ks[6])
	assert.Equal(t, m.Config.Dim, ks[0])
	// q, k and v read the same normalised input, as do gate and up; o and down do not.
	assert.Equal(t, inputs[0], inputs[1])
	assert.Equal(t, inputs[0], inputs[2])
	assert.NotEqual(t, inputs[0], inputs[3])
	assert.Equal(t, inputs[4], inputs[5])
	// The first q input is RMSNorm of the embeddings with layer 0's norm weights.
	D := m.Config.Dim
	emb, norm := m.Weight("model.embed_tokens.weight").F32(), m.Weight("model.layers.0.input_layernorm.weight").F32()
	want := make([]float32, 5*D)
	for r, tok := range []int{1, 2, 3, 1, 4} {
		rmsNorm(want[r*D:(r+1)*D], emb[tok*D:(tok+1)*D], norm, 1, D, float32(m.Config.NormEps))
	}
	assert.Equal(t, want, inputs[0])
}

// scaled multiplies the wrapped layer's output by 2: plugging it changes the logits,
// resetting restores them.
type scaled struct{ Linear }

func (s scaled) Forward(x []float32, M int, out []float32) {
	s.Linear.Forward(x, M, out)
	for i := range out[:M*func() int { n, _ := s.Dims(); return n }()] {
		out[i] *= 2
	}
}

func TestSetLinearPlugsAndValidates(t *testing.T) {
	m := tinyModel(t, tinyConfig(), 6)
	seq := [][]int{{1, 2, 3, 4}}
	ref, err := m.Forward(seq, nil)
	require.NoError(t, err)
	name := "model.layers.0.mlp.down_proj"
	require.NoError(t, m.SetLinear(name, scaled{m.Linear(name)}))
	got, err := m.Forward(seq, nil)
	require.NoError(t, err)
	assert.NotEqual(t, ref[0], got[0])
	m.ResetLinears()
	got, err = m.Forward(seq, nil)
	require.NoError(t, err)
	assert.Equal(t, ref[0], got[0])

	err = m.SetLinear("model.layers.9.mlp.down_proj", m.Linear(name))
	assert.ErrorContains(t, err, "no linear layer named")
	err = m.SetLinear(name, m.Linear("model.layers.0.mlp.up_proj"))
	assert.ErrorContains(t, err, "is [24, 16], want [16, 24]")
}

func TestAttentionBiasIsApplied(t *testing.T) {
	cfg := tinyConfig()
	cfg.Bias = true
	ts := randomTensors(cfg, 7)
	with, err := New(cfg, ts)
	require.NoError(t, err)
	for _, p := range []string{"q_proj", "k_proj", "v_proj"} {
		for l := 0; l < cfg.Layers; l++ {
			b := ts[fmt.Sprintf("model.layers.%d.self_attn.%s.bias", l, p)].F32()
			clear(b)
		}
	}
	zero, err := New(cfg, ts)
	require.NoError(t, err)
	cfg.Bias = false
	without, err := New(cfg, ts)
	require.NoError(t, err)
	seq := [][]int{{1, 2, 3, 4}}
	a, _ := with.Forward(seq, nil)
	b, _ := zero.Forward(seq, nil)
	c, _ := without.Forward(seq, nil)
	assert.NotEqual(t, a[0], b[0])
	assert.Equal(t, c[0], b[0], "a zero bias is no bias")
}

func TestBadInputsGetClearErrors(t *testing.T) {
	cfg := tinyConfig()
	m := tinyModel(t, cfg, 8)
	_, err := m.Forward([][]int{{1, 40}}, nil)
	assert.ErrorContains(t, err, "token id 40 outside the vocabulary [0, 40)")
	_, err = m.Forward([][]int{{}}, nil)
	assert.ErrorContains(t, err, "sequence 0 of the batch is empty")
	_, err = m.Forward([][]int{make([]int, 65)}, nil)
	assert.ErrorContains(t, err, "longer than the model's 64")

	ts := randomTensors(cfg, 8)
	delete(ts, "model.layers.1.mlp.up_proj.weight")
	_, err = New(cfg, ts)
	assert.ErrorContains(t, err, "missing tensor model.layers.1.mlp.up_proj.weight")

	ts = randomTensors(cfg, 8)
	ts["model.layers.0.self_attn.k_proj.weight"] = tensor.FromF32(make([]float32, 16*16), 16, 16)
	_, err = New(cfg, ts)
	assert.ErrorContains(t, err, "k_proj.weight has shape [16 16], want [8 16]")

	ts = randomTensors(cfg, 8)
	ts["model.norm.weight"].F32()[3] = float32(math.NaN())
	_, err = New(cfg, ts)
	assert.ErrorContains(t, err, "model.norm.weight has a non-finite value NaN at element 3")

	bad := cfg
	bad.KVHeads = 3
	_, err = New(bad, randomTensors(cfg, 8))
	assert.ErrorContains(t, err, "num_attention_heads 4 does not divide by num_key_value_heads 3")
}
