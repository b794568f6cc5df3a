package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchGemmCPU(t *testing.T) {
	dir := t.TempDir()
	js, cs := filepath.Join(dir, "g.json"), filepath.Join(dir, "g.csv")
	var out, errb bytes.Buffer
	code := runMain([]string{"bench", "gemm", "--device", "cpu", "--shape", "256,128", "--m", "1,3", "--iters", "2", "--warmup", "0", "--json", js, "--csv", cs}, &env{stdout: &out, stderr: &errb})
	require.Equal(t, 0, code, "stderr: %s", errb.String())
	assert.Contains(t, out.String(), "CPU backend (NO GPU)")
	for _, k := range []string{"f32", "w8a8", "w8a8+aq", "w4a16-g128"} {
		assert.Contains(t, out.String(), k)
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
		var out, errb bytes.Buffer
		assert.Equal(t, 2, runMain(args, &env{stdout: &out, stderr: &errb}), "%v: %s", args, errb.String())
	}
}
