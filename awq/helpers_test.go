package awq

import (
	"math"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// tinyConfig is a small grouped-query model (2 query heads per kv head) with q/k/v biases,
// so that every folding path (norms, v_proj rows and bias under GQA, up_proj rows) runs.
func tinyConfig() checkpoint.LlamaConfig {
	return checkpoint.LlamaConfig{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40,
		MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5, Bias: true}
}

// randomTensors returns deterministic Gaussian weights for cfg with HF names; norm
// weights vary per channel.
func randomTensors(cfg checkpoint.LlamaConfig, seed uint64) map[string]*tensor.Tensor {
	return llamatest.Tensors(cfg, seed, llamatest.RandomNorms)
}

// tinyModel is the model of tinyConfig with randomTensors(cfg, seed).
func tinyModel(t *testing.T, seed uint64) (checkpoint.LlamaConfig, *model.Model) {
	t.Helper()
	cfg := tinyConfig()
	m, err := model.New(cfg, randomTensors(cfg, seed))
	require.NoError(t, err)
	return cfg, m
}

// calibStats are what the search reads from the calibration data: every linear layer's
// Hessian and mean |x| (MeanAbs) over calib, batch sequences per forward pass.
func calibStats(t *testing.T, m *model.Model, calib [][]int, batch int) (map[string]*gptq.Hessian, map[string][]float64) {
	t.Helper()
	hs, err := collect.Hessians(m, calib, batch, nil)
	require.NoError(t, err)
	am, err := MeanAbs(m, calib, batch)
	require.NoError(t, err)
	return hs, am
}

// scaledGroups counts the groups that chose scaling (alpha > 0, or a duo pair).
func scaledGroups(scales []Scales) int {
	n := 0
	for _, sc := range scales {
		if sc.Alpha > 0 || sc.Duo {
			n++
		}
	}
	return n
}

// randomScales gives every group log-uniform scales in [1/10, 10].
func randomScales(t *testing.T, cfg checkpoint.LlamaConfig, seed uint64) []Scales {
	groups, err := Groups(cfg)
	require.NoError(t, err)
	r := testutil.Rand(seed)
	var out []Scales
	for _, g := range groups {
		s := make([]float32, g.Channels)
		for i := range s {
			s[i] = float32(math.Pow(10, 2*r.Float64()-1))
		}
		out = append(out, Scales{Group: g, S: s})
	}
	return out
}

func tokens(seed uint64, n, length, vocab int) [][]int {
	r := testutil.Rand(seed)
	out := make([][]int, n)
	for i := range out {
		out[i] = make([]int, length)
		for j := range out[i] {
			out[i][j] = r.IntN(vocab)
		}
	}
	return out
}

// maxRelDiff is max |a-b| / (1 + max|a|) over all logits.
func maxRelDiff(t *testing.T, a, b *model.Model, toks [][]int) float64 {
	la, err := a.Forward(toks, nil)
	require.NoError(t, err)
	lb, err := b.Forward(toks, nil)
	require.NoError(t, err)
	var d, mx float64
	for i := range la {
		for j := range la[i] {
			d = math.Max(d, math.Abs(float64(la[i][j]-lb[i][j])))
			mx = math.Max(mx, math.Abs(float64(la[i][j])))
		}
	}
	return d / (1 + mx)
}
