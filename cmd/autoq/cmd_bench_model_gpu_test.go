//go:build cuda

package main

import (
	"encoding/json"
	"testing"

	"github.com/autoq/autoq/autoquant"

	"github.com/autoq/autoq/backend"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default GPU benchmark: the synthetic 2-layer Llama-7B-shaped model, every layer on a
// kernel (7B shapes meet the W8A8 and W4A16 shape rules), speedups against fp16.
func TestBenchModelGPUSynthetic(t *testing.T) {
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU benchmark test skipped", err)
	}
	code, out, stderr := runCLI("bench", "model", "--device", "cuda", "--scheme", "w8a8,w4g128", "--batch", "1,4", "--seq", "128",
		"--runs", "3", "--warmup", "1", "--json")
	require.Equal(t, 0, code, stderr)
	var rep autoquant.BenchModelReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	t.Logf("%s", out)
	assert.Equal(t, "fp16", rep.Baseline)
	require.Len(t, rep.Points, 2)
	for _, p := range rep.Points {
		require.Len(t, p.Variants, 3)
		assert.Equal(t, "fp16", p.Variants[0].Scheme)
		for _, v := range p.Variants {
			assert.Greater(t, v.MedianMs, 0.0)
			assert.InDelta(t, p.Variants[0].MedianMs/v.MedianMs, v.Speedup, 1e-9)
		}
	}
	assert.Equal(t, "w8a8 x14", rep.Paths["w8a8"])
	assert.Equal(t, "w4a16-g128 x14", rep.Paths["w4g128"])
	assert.Equal(t, "cublas-f16 x14", rep.Paths["fp16"])
}
