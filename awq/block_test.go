package awq

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The block outputs computed on cached inputs equal the model's own: the attention block
// (GQA, biases, RoPE, causal, sequences of different lengths) is o_proj applied to the
// o_proj input the model's hook sees, the MLP block is down_proj applied to its input.
func TestBlocksMatchModel(t *testing.T) {
	cfg := tinyConfig()
	ts := randomTensors(cfg, 21)
	m, err := model.New(cfg, ts)
	require.NoError(t, err)
	seqs := tokens(22, 3, 17, cfg.Vocab)
	seqs[1] = seqs[1][:9]
	b, err := CaptureBlocks(m, seqs, 2)
	require.NoError(t, err)
	require.Equal(t, 17+9+17, b.Tokens())
	oIn := map[int][]float32{}
	dIn := map[int][]float32{}
	for b0 := 0; b0 < len(seqs); b0 += 2 {
		_, err = m.Forward(seqs[b0:min(b0+2, len(seqs))], func(name string, x []float32, M, K int) {
			for l := 0; l < cfg.Layers; l++ {
				switch name {
				case fmt.Sprintf("model.layers.%d.self_attn.o_proj", l):
					oIn[l] = append(oIn[l], x...)
				case fmt.Sprintf("model.layers.%d.mlp.down_proj", l):
					dIn[l] = append(dIn[l], x...)
				}
			}
		})
		require.NoError(t, err)
	}
	w := func(n string) []float32 { return ts[n].F32() }
	D, H := cfg.Dim, cfg.HiddenDim
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		M := b.Tokens()
		got := b.attention(l, w(p+"self_attn.q_proj.weight"), w(p+"self_attn.k_proj.weight"), w(p+"self_attn.v_proj.weight"),
			w(p+"self_attn.q_proj.bias"), w(p+"self_attn.k_proj.bias"), w(p+"self_attn.v_proj.bias"), w(p+"self_attn.o_proj.weight"))
		want := linear(oIn[l], w(p+"self_attn.o_proj.weight"), nil, M, D, D)
		assert.Less(t, maxAbs(got, want), 1e-4, "attention layer %d", l)
		got = b.mlp(l, w(p+"mlp.gate_proj.weight"), w(p+"mlp.up_proj.weight"), w(p+"mlp.down_proj.weight"))
		want = linear(dIn[l], w(p+"mlp.down_proj.weight"), nil, M, D, H)
		assert.Less(t, maxAbs(got, want), 1e-4, "mlp layer %d", l)
	}
}

func maxAbs(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
