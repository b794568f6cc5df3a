//go:build cuda

package autoquant

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/cgo"
	_ "github.com/autoq/autoq/gpurunner" // registers the GPU block runner
)

func cudaDevice(t *testing.T) backend.Device {
	t.Helper()
	if n, err := cgo.DeviceCount(); err != nil || n == 0 {
		t.Skipf("no CUDA device (count %d, %v): the streaming GPU tests need one", n, err)
	}
	return backend.Device{CUDA: true}
}

// `autoq run`'s streaming pipeline with its forward passes on the GPU (one block resident,
// F16 linears) agrees with the CPU reference on the real model: the exact sensitivity ranks
// (layer, scheme) damages alike (Spearman >= 0.9), the verify perplexities agree within
// F16's error, and the export is written. With a device budget that forces the boundary
// states to spill, the numbers are the unspilled GPU run's bit for bit (states go to the
// host and come back as they were).
func TestStreamingOnTheGPUMatchesTheCPU(t *testing.T) {
	dev := cudaDevice(t)
	src, d := stories(t, "three end-to-end runs", DataOptions{CalibTokens: 4096, SensTokens: 1024, EvalTokens: 2048})
	dir := t.TempDir()
	run := func(name string, so StreamOptions) *RunReport {
		opts := PipelineOptions{Src: src, Data: d, Out: filepath.Join(dir, name), TargetBits: 6, Target: "transformers",
			Gate: Gate{MaxPPLIncrease: -1, MaxKL: -1}}
		rep, err := RunStreaming(Env{}, opts, so)
		require.NoError(t, err, name)
		require.True(t, rep.Exported, name)
		return rep
	}
	cpu := run("cpu", StreamOptions{})
	gpu := run("gpu", StreamOptions{Device: dev})
	rho := spearmanOf(cpu.Sensitivity, gpu.Sensitivity)
	t.Logf("exact sensitivity, GPU vs CPU ranks: Spearman %.3f; baseline ppl %.5f vs %.5f; candidate %.5f vs %.5f",
		rho, gpu.Verify.BaselinePPL, cpu.Verify.BaselinePPL, gpu.Verify.CandidatePPL, cpu.Verify.CandidatePPL)
	assert.GreaterOrEqual(t, rho, 0.9)
	assert.InDelta(t, 0, math.Abs(gpu.Verify.BaselinePPL/cpu.Verify.BaselinePPL-1), 5e-3)
	assert.InDelta(t, 0, math.Abs(gpu.Verify.CandidatePPL/cpu.Verify.CandidatePPL-1), 1e-2)

	if gpu.KernelLayers > 0 {
		t.Logf("latency: %s (fp %.2f ms, quantized %.2f ms)", gpu.LatencyNote, gpu.FPLatencyMs, gpu.KernelLatencyMs)
		assert.NotNil(t, gpu.FPLatency)
	}

	spilled := run("spilled", StreamOptions{Device: dev, MaxDeviceMem: 12 << 20})
	assert.Equal(t, gpu.Sensitivity.Layers, spilled.Sensitivity.Layers)
	assert.Equal(t, gpu.Verify.CandidatePPL, spilled.Verify.CandidatePPL)
}
