package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synthText is a few paragraphs of plain English for the synthetic tokenizer.
func synthText(t *testing.T) string {
	t.Helper()
	words := strings.Fields("once upon a time there was a little girl named lily who loved to play outside in the sun with her dog, and every day they ran to the park.")
	var paras []string
	for p := 0; p < 24; p++ {
		var b []string
		for i := 0; i < 70; i++ {
			b = append(b, words[(i*7+p*3)%len(words)])
		}
		paras = append(paras, strings.Join(b, " "))
	}
	path := filepath.Join(t.TempDir(), "text.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(paras, "\n\n")), 0o644))
	return path
}

// The synthetic checkpoint is a model like any other: eval and calibrate run on text with
// its tokenizer (found beside the weights).
func TestSynthEvalAndCalibrateOnText(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	code, _, stderr := runCLI("synth", "--shape", "tiny", "--out", dir, "--shard-size", "1MB")
	require.Equal(t, 0, code, stderr)
	text := synthText(t)

	code, out, stderr := runCLI("eval", "--model", dir, "--data", text, "--seq-len", "64", "--tokens", "512",
		"--scheme", "w4g128", "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.EvalReport](t, out)
	require.Len(t, rep.Results, 2)
	for _, r := range rep.Results {
		assert.Equal(t, 512, r.Tokens)
		assert.False(t, math.IsNaN(r.Perplexity) || math.IsInf(r.Perplexity, 0))
		assert.Greater(t, r.Perplexity, 1.0)
	}

	calib := filepath.Join(t.TempDir(), "calib.json")
	code, _, stderr = runCLI("calibrate", "--model", dir, "--data", text, "--tokens", "512", "--seq-len", "64", "--out", calib)
	require.Equal(t, 0, code, stderr)
	_, err := os.Stat(calib)
	require.NoError(t, err)
}

// --out that is a file is refused, even with --force (a directory never replaces a user's
// file); a previous synthetic checkpoint is replaced only with --force.
func TestSynthOutIsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o644))
	code, _, stderr := runCLI("synth", "--shape", "tiny", "--out", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "is an existing file")
	code, _, _ = runCLI("synth", "--shape", "tiny", "--out", path, "--force")
	assert.Equal(t, 2, code)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))

	dir := filepath.Join(t.TempDir(), "s")
	code, _, stderr = runCLI("synth", "--shape", "tiny", "--out", dir)
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI("synth", "--shape", "tiny", "--out", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "give --force")
	code, _, stderr = runCLI("synth", "--shape", "tiny", "--out", dir, "--force")
	require.Equal(t, 0, code, stderr)
	_, err = os.Stat(filepath.Join(dir, "model.safetensors"))
	assert.NoError(t, err)

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	code, _, stderr = runCLI("synth", "--shape", "tiny", "--out", empty)
	require.Equal(t, 0, code, stderr, "an empty directory is fine")
}
