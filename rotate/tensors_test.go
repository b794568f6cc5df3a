package rotate

import (
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wrapped view reads as the rotated checkpoint: Checkpoint's tensors rounded once to
// each source tensor's dtype (BF16 here), lm_head added for a tied source, and a model
// built from it computes the original's logits up to that rounding.
func TestWrapReadsAsTheRotatedCheckpoint(t *testing.T) {
	cfg := modelCases()[2].cfg // tied, biases
	ts := named(llamatest.Tensors(cfg, 9, llamatest.RandomNorms))
	for i := range ts {
		ts[i].T = ts[i].T.Convert(tensor.BF16)
	}
	src, err := checkpoint.NewMemory(ts, map[string]string{"k": "v"})
	require.NoError(t, err)
	r, err := New(cfg, 5, Options{})
	require.NoError(t, err)
	_, wantBF16Src, err := Checkpoint(cfg, ts, 5, Options{}) // F32 results from the BF16 values
	require.NoError(t, err)

	view, err := r.Wrap(src)
	require.NoError(t, err)
	names := view.Names()
	require.Len(t, names, len(wantBF16Src))
	assert.Equal(t, "lm_head.weight", names[len(names)-1])
	assert.Equal(t, map[string]string{"k": "v"}, view.Metadata())
	got := map[string]*tensor.Tensor{}
	for i, name := range names {
		info, ok := view.Info(name)
		require.True(t, ok)
		assert.Equal(t, tensor.BF16, info.DType, name)
		v, err := view.Tensor(name)
		require.NoError(t, err)
		assert.Equal(t, info.Shape, v.Shape)
		assert.Equal(t, wantBF16Src[i].T.Convert(tensor.BF16).Data, v.Data, name)
		got[name] = v
	}
	_, ok := view.Info("nope")
	assert.False(t, ok)
	_, err = view.Tensor("nope")
	assert.ErrorContains(t, err, "no tensor nope")

	rcfg := r.Config()
	tokens := tokenBatch(cfg.Vocab, 12, 7)
	orig := map[string]*tensor.Tensor{}
	for _, nt := range ts {
		orig[nt.Name] = nt.T
	}
	e := relErr(logits(t, cfg, orig, tokens), logits(t, rcfg, got, tokens))
	t.Logf("BF16 rotated view: relative logit error %.2e", e)
	assert.Less(t, e, 0.05)
	require.NoError(t, view.Close())
}

func TestWrapRefusesForeignTensors(t *testing.T) {
	cfg := modelCases()[0].cfg
	ts := named(llamatest.Tensors(cfg, 1, llamatest.PatternNorms))
	ts = append(ts, named(map[string]*tensor.Tensor{"model.rotary_emb.inv_freq": tensor.FromF32([]float32{1, 2}, 2)})...)
	src, err := checkpoint.NewMemory(ts, nil)
	require.NoError(t, err)
	r, err := New(cfg, 1, Options{})
	require.NoError(t, err)
	_, err = r.Wrap(src)
	assert.ErrorContains(t, err, "model.rotary_emb.inv_freq")
}
