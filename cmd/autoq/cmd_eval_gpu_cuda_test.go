//go:build cuda

package main

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/autoq/autoq/autoquant"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eval --device cuda on the real model: the F16 GPU reference's perplexity is the CPU's
// within 0.5% (F16 logits differ by <= 0.1, see gpurunner/runner_test.go, which moves the mean
// NLL by far less), and the quantized variants stay close to it as on the CPU.
func TestEvalGPUOnRealModel(t *testing.T) {
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU eval test skipped", err)
	}
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	args := []string{"eval", "--model", bin, "--data", data, "--tokens", "2048", "--seq-len", "128", "--scheme", "w8a8,w4g32", "--json"}
	code, out, stderr := runCLI(args...)
	require.Equal(t, 0, code, stderr)
	var cpu autoquant.EvalReport
	require.NoError(t, json.Unmarshal([]byte(out), &cpu))
	code, out, stderr = runCLI(append(args, "--device", "cuda")...)
	require.Equal(t, 0, code, stderr)
	var gpu autoquant.EvalReport
	require.NoError(t, json.Unmarshal([]byte(out), &gpu))
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
