package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs autoq with args and returns the exit code, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runMain(args, &env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

// convertReal converts the shared stories260K model into a fresh directory.
func convertReal(t *testing.T) string {
	t.Helper()
	bin := testutil.SharedData(t, "stories260K.bin")
	dir := filepath.Join(t.TempDir(), "hf")
	code, _, stderr := runCLI("convert", "llama2c", bin, "--out", dir)
	require.Equal(t, 0, code, stderr)
	return dir
}

func TestConvertReal(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	dir := filepath.Join(t.TempDir(), "hf")
	code, stdout, stderr := runCLI("convert", "llama2c", bin, "--out", dir, "--json")
	require.Equal(t, 0, code, stderr)
	var sum autoquant.ConvertReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &sum))
	assert.Equal(t, 47, sum.Tensors)
	assert.Equal(t, int64(260032), sum.Params)
	assert.True(t, sum.Tied)

	cfg, err := checkpoint.ReadConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.Dim)
	c, err := safetensors.OpenCheckpoint(dir)
	require.NoError(t, err)
	defer c.Close()
	info, ok := c.Info("model.layers.0.self_attn.k_proj.weight")
	require.True(t, ok)
	assert.Equal(t, []int{32, 64}, info.Shape)
}

func TestConvertErrors(t *testing.T) {
	code, _, stderr := runCLI("convert", "llama2c", "x.bin")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--out DIR is required")
	code, _, _ = runCLI("convert", "llama2c", "--out", t.TempDir())
	assert.Equal(t, 2, code)

	bad := filepath.Join(t.TempDir(), "bad.bin")
	require.NoError(t, os.WriteFile(bad, make([]byte, 40), 0o644))
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr = runCLI("convert", "llama2c", bad, "--out", out)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, bad)
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "a failed convert writes nothing")

	code, stdout, stderr := runCLI("convert", "llama2c", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout+stderr, "Usage: autoq convert llama2c FILE --out DIR")
}
