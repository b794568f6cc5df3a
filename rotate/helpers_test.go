package rotate

import (
	"math"
	"slices"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// named lists a tensor map in name order.
func named(ts map[string]*tensor.Tensor) []safetensors.NamedTensor {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]safetensors.NamedTensor, len(names))
	for i, n := range names {
		out[i] = safetensors.NamedTensor{Name: n, T: ts[n]}
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
