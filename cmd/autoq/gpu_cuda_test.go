//go:build cuda

package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quantfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default GPU benchmark: the synthetic 2-layer Llama-7B-shaped model, every layer on a
// kernel (7B shapes meet the W8A8 and W4A16 shape rules), speedups against fp16.
func TestBenchModelGPUSynthetic(t *testing.T) {
	needCUDA(t, "GPU benchmark test")
	code, out, stderr := runCLI("bench", "model", "--device", "cuda", "--scheme", "w8a8,w4g128", "--batch", "1,4", "--seq", "128",
		"--runs", "3", "--warmup", "1", "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.BenchModelReport](t, out)
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

// calibrate --model on a GPU runs the forward pass in the GPU model runner and bins on the
// device. Its activations are F16 (the CPU's are F32), so thresholds are close to, not equal
// to, the CPU's: the max calibrator's amax (the largest |x|) moves by F16 rounding of the
// activations (~0.1%) plus the drift F16 adds through the layers; 3% bounds both here.
func TestCalibrateModelOnGPU(t *testing.T) {
	needCUDA(t, "GPU calibration test")
	bin, data := testutil.Stories(t)
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

// eval --device cuda on the real model: the F16 GPU reference's perplexity is the CPU's
// within 0.5% (F16 logits differ by <= 0.1, see gpurunner/runner_test.go, which moves the mean
// NLL by far less), and the quantized variants stay close to it as on the CPU.
func TestEvalGPUOnRealModel(t *testing.T) {
	needCUDA(t, "GPU eval test")
	bin, data := testutil.Stories(t)
	args := []string{"eval", "--model", bin, "--data", data, "--tokens", "2048", "--seq-len", "128", "--scheme", "w8a8,w4g32", "--json"}
	code, out, stderr := runCLI(args...)
	require.Equal(t, 0, code, stderr)
	cpu := decodeJSON[autoquant.EvalReport](t, out)
	code, out, stderr = runCLI(append(args, "--device", "cuda")...)
	require.Equal(t, 0, code, stderr)
	gpu := decodeJSON[autoquant.EvalReport](t, out)
	t.Logf("%s", out)
	require.Len(t, gpu.Results, 3)
	assert.Equal(t, []string{"fp16", "w8a8", "w4g32"}, []string{gpu.Results[0].Scheme, gpu.Results[1].Scheme, gpu.Results[2].Scheme})
	assert.Equal(t, cpu.Results[0].Scored, gpu.Results[0].Scored)
	assert.Less(t, math.Abs(gpu.Results[0].Perplexity/cpu.Results[0].Perplexity-1), 0.005)
	for i := 1; i < 3; i++ {
		g, c := gpu.Results[i], cpu.Results[i]
		t.Logf("%s: ppl increase GPU %+.3f%%, CPU %+.3f%%; top-1 GPU %.4f CPU %.4f", g.Scheme, g.PPLIncrease, c.PPLIncrease, g.Top1, c.Top1)
		assert.Less(t, math.Abs(g.Perplexity/c.Perplexity-1), 0.02, g.Scheme)
	}
}

// quantize --method gptq --act-order=false runs GPTQ on the GPU, and its levels agree with
// the CPU's (the GPU and CPU differ only in the summation order of the batched float64
// updates: cgo's TestGPTQGPUMatchesCPU bounds that at >= 99.9% identical levels).
func TestQuantizeGPTQOnGPU(t *testing.T) {
	needCUDA(t, "GPU GPTQ CLI test")
	bin, data := testutil.Stories(t)
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
