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

// With the CPU GPTQ plugged in, QuantizeModelGPTQWith gives exactly QuantizeModel's GPTQ
// result, and every layer's quantizer sees the fitted scheme and its own Hessian.
func TestQuantizeModelGPTQWithCPUEqualsQuantizeModel(t *testing.T) {
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	r := testutil.Rand(3)
	seqs := make([][]int, 4)
	for i := range seqs {
		seqs[i] = make([]int, 32)
		for j := range seqs[i] {
			seqs[i][j] = 3 + r.IntN(m.Config.Vocab-3)
		}
	}
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
