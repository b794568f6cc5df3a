package rotate

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// named lists a tensor map in name order.
func named(ts map[string]*tensor.Tensor) []safetensors.NamedTensor {
	out := make([]safetensors.NamedTensor, 0, len(ts))
	for _, n := range slices.Sorted(maps.Keys(ts)) {
		out = append(out, safetensors.NamedTensor{Name: n, T: ts[n]})
	}
	return out
}

func byName(nts []safetensors.NamedTensor) map[string]*tensor.Tensor {
	m := make(map[string]*tensor.Tensor, len(nts))
	for _, nt := range nts {
		m[nt.Name] = nt.T
	}
	return m
}

// logits runs the full-precision model of cfg and ts on tokens.
func logits(t *testing.T, cfg checkpoint.LlamaConfig, ts map[string]*tensor.Tensor, tokens [][]int) [][]float32 {
	t.Helper()
	m, err := model.New(cfg, ts)
	require.NoError(t, err)
	out, err := m.Forward(tokens, nil)
	require.NoError(t, err)
	return out
}

// relErr is max |a − b| over max |a|, over every sequence.
func relErr(a, b [][]float32) float64 {
	var diff, scale float64
	for s := range a {
		for i, v := range a[s] {
			diff = max(diff, math.Abs(float64(v)-float64(b[s][i])))
			scale = max(scale, math.Abs(float64(v)))
		}
	}
	return diff / scale
}

// tokenBatch returns sequences of the given lengths of token ids drawn deterministically.
func tokenBatch(vocab int, lens ...int) [][]int {
	var out [][]int
	k := 1
	for _, n := range lens {
		seq := make([]int, n)
		for i := range seq {
			k = (k*31 + 7) % 1009
			seq[i] = k % vocab
		}
		out = append(out, seq)
	}
	return out
}

// tensorsWithAllBiases is llamatest.Tensors(cfg, seed, RandomNorms) (q/k/v biases when
// cfg.Bias) plus o_proj, down_proj and up_proj biases, standard normal: every bias the
// rotator transforms.
func tensorsWithAllBiases(cfg checkpoint.LlamaConfig, seed uint64) map[string]*tensor.Tensor {
	ts := llamatest.Tensors(cfg, seed, llamatest.RandomNorms)
	r := rand.New(rand.NewPCG(1, 2))
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts[p+"self_attn.o_proj.bias"] = tensor.FromF32(testutil.Gaussian(r, cfg.Dim, 1), cfg.Dim)
		ts[p+"mlp.down_proj.bias"] = tensor.FromF32(testutil.Gaussian(r, cfg.Dim, 1), cfg.Dim)
		ts[p+"mlp.up_proj.bias"] = tensor.FromF32(testutil.Gaussian(r, cfg.HiddenDim, 1), cfg.HiddenDim)
	}
	return ts
}
