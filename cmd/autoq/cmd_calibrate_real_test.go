package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// Real activations: the stories260K model's linear inputs over 6 batches, dumped the way a
// PyTorch forward hook would, calibrated by the CLI (sharded and merged, and unsharded)
// and fed straight from the forward pass into a calib.Session: all three agree bit for bit.
func TestCalibrateRealModelActivations(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	m, err := model.Load(bin)
	require.NoError(t, err)
	dir := t.TempDir()
	direct := calib.NewSession(calib.SessionOptions{})
	r := testutil.Rand(40)
	for b := range 6 {
		tokens := make([][]int, 2)
		for i := range tokens {
			tokens[i] = make([]int, 24)
			for j := range tokens[i] {
				tokens[i][j] = 1 + r.IntN(m.Config.Vocab-1)
			}
		}
		var mu sync.Mutex
		var batch []safetensors.NamedTensor
		_, err := m.Forward(tokens, func(name string, x []float32, M, K int) {
			mu.Lock()
			defer mu.Unlock()
			batch = append(batch, safetensors.NamedTensor{Name: name + ":input", T: tensor.FromF32(append([]float32(nil), x...), M, K)})
		})
		require.NoError(t, err)
		require.NotEmpty(t, batch)
		require.NoError(t, safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("acts_%02d.safetensors", b)), batch, nil))
		nts := make([]calib.NamedTensor, len(batch))
		for i, nt := range batch {
			nts[i] = calib.NamedTensor{Name: nt.Name, T: nt.T}
		}
		require.NoError(t, direct.Add(fmt.Sprintf("forward batch %d", b), nts))
	}
	glob := filepath.Join(dir, "*.safetensors")
	whole := filepath.Join(dir, "whole.json")
	code, _, stderr := runCLI("calibrate", "--activations", glob, "--device", "cpu", "--out", whole)
	require.Equal(t, 0, code, stderr)
	hist := filepath.Join(dir, "hist")
	for i := range 4 {
		code, _, stderr := runCLI("calibrate", "--activations", glob, "--device", "cpu", "--shard", fmt.Sprintf("%d/4", i), "--histograms", hist)
		require.Equal(t, 0, code, stderr)
	}
	merged := filepath.Join(dir, "merged.json")
	code, _, stderr = runCLI("calib", "merge", hist, "--device", "cpu", "--out", merged)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, readFile(t, whole), readFile(t, merged))

	tab, err := direct.Table(calib.DefaultOptions(calib.MethodEntropy))
	require.NoError(t, err)
	b, err := tab.Marshal()
	require.NoError(t, err)
	require.Equal(t, readFile(t, whole), string(b))
	// 5 layers x 7 linears; q/k/v (and gate/up) see the same input, so the same threshold.
	require.Len(t, tab.Tensors, 35)
	byName := map[string]calib.TableEntry{}
	for _, e := range tab.Tensors {
		byName[e.Name] = e
	}
	q, k := byName["model.layers.2.self_attn.q_proj:input"], byName["model.layers.2.self_attn.k_proj:input"]
	q.Name, k.Name = "", ""
	require.Equal(t, q, k)
	for _, e := range tab.Tensors {
		require.False(t, e.Empty, e.Name)
		require.Greater(t, e.Amax, float32(0), e.Name)
		require.LessOrEqual(t, e.Amax, e.AbsMax*(1+1.0/1024), e.Name) // within the top bin
		require.EqualValues(t, 0, e.NaN+e.Inf)
	}
	_ = os.Remove(whole)
}
