package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	sum := decodeJSON[autoquant.ConvertReport](t, stdout)
	assert.Equal(t, 47, sum.Tensors)
	assert.Equal(t, int64(260032), sum.Params)
	assert.True(t, sum.Tied)

	cfg, err := checkpoint.ReadConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.Dim)
	c := testutil.Open(t, safetensors.OpenCheckpoint, dir)
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

// convert picks up the tok*.bin beside the checkpoint and writes an HF tokenizer.json that
// encodes text exactly like the llama2.c tokenizer it came from.
func TestConvertWritesTokenizerJSON(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	tokBin := testutil.SharedData(t, "tok512.bin")
	out := filepath.Join(t.TempDir(), "hf")
	code, _, stderr := runCLI("convert", "llama2c", bin, "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "tokenizer.json")

	hf, err := tokenizer.Load(filepath.Join(out, "tokenizer.json"))
	require.NoError(t, err)
	ref, err := tokenizer.LoadLlama2C(tokBin)
	require.NoError(t, err)
	for _, s := range []string{"Once upon a time, there was a little girl named Lily.", "He said: \"Wow!\" and ran home."} {
		assert.Equal(t, ref.Encode(s, true), hf.Encode(s, true), s)
	}

	// --tokenizer none skips it.
	out2 := filepath.Join(t.TempDir(), "hf2")
	code, _, _ = runCLI("convert", "llama2c", bin, "--out", out2, "--tokenizer", "none")
	require.Equal(t, 0, code)
	_, err = os.Stat(filepath.Join(out2, "tokenizer.json"))
	assert.True(t, os.IsNotExist(err))
}

func TestConvertTokenizerVocabMismatch(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	dir := t.TempDir()
	// A tokenizer file with 3 tokens: int32 max_len, then (score, len, bytes) per token.
	b := []byte{1, 0, 0, 0}
	for _, p := range []string{"a", "b", "c"} {
		b = append(append(b, 0, 0, 0, 0, 1, 0, 0, 0), p...)
	}
	tok := filepath.Join(dir, "tiny.bin")
	require.NoError(t, os.WriteFile(tok, b, 0o644))
	code, _, stderr := runCLI("convert", "llama2c", bin, "--out", filepath.Join(dir, "o"), "--tokenizer", tok)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "has 3 tokens but")
}

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
