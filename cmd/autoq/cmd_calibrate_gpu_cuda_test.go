//go:build cuda

package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// calibrate --model on a GPU runs the forward pass in the GPU model runner and bins on the
// device. Its activations are F16 (the CPU's are F32), so thresholds are close to, not equal
// to, the CPU's: the max calibrator's amax (the largest |x|) moves by F16 rounding of the
// activations (~0.1%) plus the drift F16 adds through the layers; 3% bounds both here.
func TestCalibrateModelOnGPU(t *testing.T) {
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU calibration test skipped", err)
	}
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	dir := t.TempDir()
	args := []string{"calibrate", "--model", bin, "--data", data, "--tokens", "4096", "--method", "max"}
	code, _, stderr := runCLI(append(args, "--device", "cuda", "--out", filepath.Join(dir, "gpu.json"))...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "forward: GPU model runner")
	code, _, stderr = runCLI(append(args, "--device", "cpu", "--out", filepath.Join(dir, "cpu.json"))...)
	require.Equal(t, 0, code, stderr)

	gpu, err := calib.ReadTable(filepath.Join(dir, "gpu.json"))
	require.NoError(t, err)
	cpu, err := calib.ReadTable(filepath.Join(dir, "cpu.json"))
	require.NoError(t, err)
	require.Equal(t, len(cpu.Tensors), len(gpu.Tensors))
	worst := 0.0
	for i, c := range cpu.Tensors {
		g := gpu.Tensors[i]
		require.Equal(t, c.Name, g.Name)
		assert.Equal(t, c.Count, g.Count, c.Name)
		rel := math.Abs(float64(g.Amax)/float64(c.Amax) - 1)
		worst = math.Max(worst, rel)
		assert.Less(t, rel, 0.03, "%s: GPU amax %v, CPU %v", c.Name, g.Amax, c.Amax)
	}
	t.Logf("GPU vs CPU max-calibrator amax: worst relative difference %.3g over %d tensors", worst, len(cpu.Tensors))
}
