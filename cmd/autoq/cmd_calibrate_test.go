package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeActivationDumps writes n dumps of three activations (F32 Gaussian, F16 Laplace,
// BF16 heavy-tailed) into dir.
func writeActivationDumps(t *testing.T, dir string, n int) {
	r := testutil.Rand(30)
	for i := range n {
		g := testutil.Gaussian(r, 8*64, 1)
		l := testutil.Laplace(r, 8*32, 0.2)
		s := testutil.StudentT(r, 8*16, 2)
		require.NoError(t, safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("batch_%03d.safetensors", i)), []safetensors.NamedTensor{
			{Name: "model.layers.0.self_attn.q_proj:input", T: tensor.FromF32(g, 8, 64)},
			{Name: "model.layers.0.mlp.down_proj:input", T: tensor.FromU16(tensor.F16, tensor.F32ToF16Slice(l), 8, 32)},
			{Name: "model.layers.1.mlp.up_proj:input", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(s), 8, 16)},
		}, nil))
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// End to end: sharded calibrate + calib merge gives the unsharded table and TensorRT cache
// byte for byte, and the table's thresholds are those of calib on the same data.
func TestCalibrateShardedMergeEqualsUnsharded(t *testing.T) {
	dir := t.TempDir()
	dumps := filepath.Join(dir, "dumps")
	require.NoError(t, os.Mkdir(dumps, 0o755))
	writeActivationDumps(t, dumps, 10)
	glob := filepath.Join(dumps, "*.safetensors")

	for _, method := range []string{"entropy", "percentile", "mse", "max"} {
		whole := filepath.Join(dir, method+"-whole.json")
		wholeTRT := filepath.Join(dir, method+"-whole.cache")
		code, stdout, stderr := runCLI("calibrate", "--activations", glob, "--method", method, "--device", "cpu", "--out", whole, "--trt-cache", wholeTRT)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "model.layers.0.self_attn.q_proj:input")

		hist := filepath.Join(dir, method+"-hist")
		for i := range 3 {
			code, _, stderr := runCLI("calibrate", "--activations", glob, "--method", method, "--device", "cpu", "--shard", fmt.Sprintf("%d/3", i), "--histograms", hist)
			require.Equal(t, 0, code, stderr)
		}
		merged := filepath.Join(dir, method+"-merged.json")
		mergedTRT := filepath.Join(dir, method+"-merged.cache")
		code, _, stderr = runCLI("calib", "merge", hist, "--method", method, "--device", "cpu", "--out", merged, "--trt-cache", mergedTRT)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, readFile(t, whole), readFile(t, merged), method)
		require.Equal(t, readFile(t, wholeTRT), readFile(t, mergedTRT), method)
	}

	// The JSON table holds what calib computes from the same values directly.
	code, stdout, stderr := runCLI("calibrate", "--activations", glob, "--json", "--device", "cpu")
	require.Equal(t, 0, code, stderr)
	var tab calib.Table
	require.NoError(t, json.Unmarshal([]byte(stdout), &tab))
	require.Len(t, tab.Tensors, 3)
	h := calib.NewHistogram("model.layers.0.self_attn.q_proj:input")
	r := testutil.Rand(30)
	for range 10 {
		h.AddF32(testutil.Gaussian(r, 8*64, 1))
		testutil.Laplace(r, 8*32, 0.2)
		testutil.StudentT(r, 8*16, 2)
	}
	want := calib.Entropy(h, calib.DefaultOptions(calib.MethodEntropy))
	got := tab.Tensors[1] // sorted: ...0.mlp, ...0.self_attn, ...1.mlp
	require.Equal(t, h.Name, got.Name)
	require.Equal(t, want.Amax, got.Amax)
	require.Equal(t, want.Amax/127, got.Scale)
	require.EqualValues(t, 5120, got.Count)
	require.Equal(t, 10, tab.Settings.Batches)

	cache := readFile(t, filepath.Join(dir, "entropy-whole.cache"))
	require.True(t, strings.HasPrefix(cache, "TRT-8601-EntropyCalibration2\n"), cache)
	assert.Contains(t, readFile(t, filepath.Join(dir, "max-whole.cache")), "TRT-8601-MinMaxCalibration\n")
}

func TestCalibrateBadInput(t *testing.T) {
	dir := t.TempDir()
	writeActivationDumps(t, dir, 2)
	// A later file changes a tensor's shape: the error names both files.
	bad := filepath.Join(dir, "batch_999.safetensors")
	require.NoError(t, safetensors.WriteFile(bad, []safetensors.NamedTensor{
		{Name: "model.layers.0.self_attn.q_proj:input", T: tensor.FromF32(make([]float32, 64), 1, 64)},
	}, nil))
	code, _, stderr := runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "batch_000.safetensors")
	assert.Contains(t, stderr, "batch_999.safetensors")
	require.NoError(t, os.Remove(bad))

	// NaN/Inf: counted and reported; an error with --fail-on-nonfinite.
	nf := filepath.Join(dir, "batch_500.safetensors")
	require.NoError(t, safetensors.WriteFile(nf, []safetensors.NamedTensor{
		{Name: "model.layers.1.mlp.up_proj:input", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(append(make([]float32, 126), float32(math.NaN()), float32(math.Inf(-1)))), 8, 16)},
	}, nil))
	code, stdout, stderr := runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu", "--json")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, `tensor "model.layers.1.mlp.up_proj:input": 1 NaN and 1 Inf values`)
	var tab calib.Table
	require.NoError(t, json.Unmarshal([]byte(stdout), &tab))
	assert.EqualValues(t, 1, tab.Tensors[2].NaN)
	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu", "--fail-on-nonfinite")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "batch_500.safetensors")
	require.NoError(t, os.Remove(nf))

	empty := filepath.Join(dir, "batch_600.safetensors")
	require.NoError(t, safetensors.WriteFile(empty, nil, nil))
	code, _, stderr = runCLI("calibrate", "--activations", empty, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "holds no tensors")
	require.NoError(t, os.Remove(empty))

	junk := filepath.Join(dir, "notes.safetensors")
	require.NoError(t, os.WriteFile(junk, []byte("hello"), 0o644))
	code, _, stderr = runCLI("calibrate", "--activations", junk, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "notes.safetensors")

	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "none-*.safetensors"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no files match")
	for _, args := range [][]string{
		{"calibrate"},
		{"calibrate", "--activations", "x", "--method", "kl"},
		{"calibrate", "--activations", "x", "--shard", "3/3"},
		{"calibrate", "--activations", "x", "--percentile", "0"},
		{"calibrate", "--activations", "x", "--device", "tpu"},
		{"calib", "merge"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}

	// calib merge: corrupt state file, same shard twice.
	hist := filepath.Join(dir, "hist")
	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "batch_*.safetensors"), "--device", "cpu", "--histograms", hist)
	require.Equal(t, 0, code, stderr)
	state := filepath.Join(hist, "histograms-00000-of-00001.json")
	code, _, _ = runCLI("calib", "merge", state, state, "--device", "cpu")
	assert.Equal(t, 2, code)
	b := []byte(readFile(t, state))
	b[len(b)-10] ^= 1
	require.NoError(t, os.WriteFile(state, b, 0o644))
	code, _, stderr = runCLI("calib", "merge", state, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "histograms-00000-of-00001.json")

	code, stdout, _ = runCLI("calibrate", "--help")
	assert.Equal(t, 0, code)
	_ = stdout
}
