//go:build cuda

package main

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quantfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quantize --method gptq --act-order=false runs GPTQ on the GPU, and its levels agree with
// the CPU's (the GPU and CPU differ only in the summation order of the batched float64
// updates: cgo's TestGPTQGPUMatchesCPU bounds that at >= 99.9% identical levels).
func TestQuantizeGPTQOnGPU(t *testing.T) {
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU GPTQ CLI test skipped", err)
	}
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	dir := t.TempDir()
	args := []string{"quantize", bin, "--bits", "4", "--granularity", "group", "--group-size", "32", "--asym",
		"--method", "gptq", "--act-order=false", "--data", data, "--calib-tokens", "2048", "--seq-len", "128"}
	code, _, stderr := runCLI(append(args, "--device", "cuda", "--out", filepath.Join(dir, "gpu"))...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "gptq: on cuda:0")
	code, _, stderr = runCLI(append(args, "--device", "cpu", "--out", filepath.Join(dir, "cpu"))...)
	require.Equal(t, 0, code, stderr)

	read := func(p string) map[string][]int32 {
		src, err := checkpoint.OpenAny(p)
		require.NoError(t, err)
		defer src.Close()
		qs, _, err := quantfile.ReadQuantized(src)
		require.NoError(t, err)
		out := map[string][]int32{}
		for n, q := range qs {
			out[n] = q.Levels()
		}
		return out
	}
	gpu, cpu := read(filepath.Join(dir, "gpu")), read(filepath.Join(dir, "cpu"))
	require.Equal(t, len(cpu), len(gpu))
	same, total := 0, 0
	for n, c := range cpu {
		g := gpu[n]
		require.Len(t, g, len(c), n)
		for i := range c {
			if c[i] == g[i] {
				same++
			}
			total++
		}
	}
	t.Logf("GPU vs CPU GPTQ levels: %d of %d identical", same, total)
	assert.GreaterOrEqual(t, float64(same)/float64(total), 0.99)
}
