package model

import (
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"

	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// randomTensors returns deterministic Gaussian weights for cfg with HF names.
func randomTensors(cfg checkpoint.LlamaConfig, seed uint64) map[string]*tensor.Tensor {
	return llamatest.Tensors(cfg, seed, llamatest.PatternNorms)
}

func tinyConfig() checkpoint.LlamaConfig {
	return checkpoint.LlamaConfig{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40,
		MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5}
}

// loadStories loads the real model (stories260K.bin), skipping when the shared data is absent.
func loadStories(t testing.TB) *Model {
	t.Helper()
	return testutil.Must(t, Load, testutil.SharedData(t, "stories260K.bin"))
}

func tinyModel(t *testing.T, cfg checkpoint.LlamaConfig, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, randomTensors(cfg, seed))
	require.NoError(t, err)
	return m
}

// readStories returns the real model's config and HF-named tensors; with raw, q/k rows are
// put back in llama2.c's interleaved order.
func readStories(t *testing.T, raw bool) (checkpoint.LlamaConfig, map[string]*tensor.Tensor) {
	t.Helper()
	cfg, named, err := checkpoint.ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	ts := byName(named)
	if raw {
		for name, tt := range ts {
			switch {
			case strings.HasSuffix(name, "q_proj.weight"):
				ts[name] = checkpoint.UnpermuteRoPE(tt, cfg.Heads)
			case strings.HasSuffix(name, "k_proj.weight"):
				ts[name] = checkpoint.UnpermuteRoPE(tt, cfg.KVHeads)
			}
		}
	}
	return *cfg, ts
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, abs64(float64(a[i])-float64(b[i])))
	}
	return d
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
