package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchGemmCPU(t *testing.T) {
	dir := t.TempDir()
	js, cs := filepath.Join(dir, "g.json"), filepath.Join(dir, "g.csv")
	code, out, stderr := runCLI("bench", "gemm", "--device", "cpu", "--shape", "256,128", "--m", "1,3", "--iters", "2", "--warmup", "0", "--json", js, "--csv", cs)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Contains(t, out, "CPU backend (NO GPU)")
	for _, k := range []string{"f32", "w8a8", "w8a8+aq", "w4a16-g128"} {
		assert.Contains(t, out, k)
	}
	var rep struct {
		Points []struct {
			M      int    `json:"m"`
			Kernel string `json:"kernel"`
		} `json:"points"`
	}
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Len(t, rep.Points, 8) // 2 M values x 4 kernels
	c, err := os.ReadFile(cs)
	require.NoError(t, err)
	assert.Equal(t, 9, len(strings.Split(strings.TrimSpace(string(c)), "\n")))
}

func TestBenchGemmUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "gemm", "--device", "cpu", "--m", "0"},
		{"bench", "gemm", "--device", "cpu", "--shape", "12"},
		{"bench", "gemm", "--device", "cpu", "--preset", "gpt5"},
		{"bench", "gemm", "--device", "cpu", "--preset", "llama2-7b", "--shape", "256,128"},
		{"bench", "gemm", "extra"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}
}

func TestBenchModelJSONAndPlot(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	png := filepath.Join(t.TempDir(), "lat.png")
	code, out, stderr := runCLI("bench", "model", "--model", bin, "--batch", "1,2", "--seq", "8", "--runs", "3",
		"--warmup", "0", "--scheme", "w8a8,w4g32a", "--json", "--plot", png)
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.BenchModelReport](t, out)
	require.Len(t, rep.Points, 2)
	for _, p := range rep.Points {
		require.Len(t, p.Variants, 3)
		assert.Equal(t, "fp32", p.Variants[0].Scheme)
		assert.Equal(t, 1.0, p.Variants[0].Speedup)
		for _, v := range p.Variants {
			assert.Greater(t, v.MedianMs, 0.0)
			assert.InDelta(t, p.Variants[0].MedianMs/v.MedianMs, v.Speedup, 1e-9)
			assert.InDelta(t, float64(p.Batch*p.Seq)/(v.MedianMs/1000), v.TokensPerSec, 1e-6)
		}
	}
	st, err := os.Stat(png)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(1000))
}

func TestBenchModelFakeKernelsTable(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	code, out, stderr := runCLI("bench", "model", "--model", bin, "--batch", "1", "--seq", "4", "--runs", "1", "--kernel", "fake", "--scheme", "w8,w4g32")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "fake kernels")
	assert.Regexp(t, `(?m)^\s+1\s+4\s+w4g32\s+[0-9.]+\s+[0-9]+\s+[0-9.]+x$`, out)
}

func TestBenchModelErrors(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	code, _, stderr := runCLI("bench", "model", "--model", bin, "--scheme", "w8")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--kernel int runs w8a8 (dynamic) and 4-bit weight-only schemes")
	code, _, stderr = runCLI("bench", "model", "--model", bin, "--seq", "1024")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--seq 1024 exceeds the model's maximum of 512")
	code, _, stderr = runCLI("bench", "model", "--model", bin, "--batch", "0")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--batch: \"0\" is not a positive integer")
}
