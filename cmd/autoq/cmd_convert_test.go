package main

import (
	"bytes"
	"os"
	"path/filepath"
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

// convert picks up the tok*.bin beside the checkpoint and writes an HF tokenizer.json that
// encodes text exactly like the llama2.c tokenizer it came from.
func TestConvertWritesTokenizerJSON(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	tokBin := testutil.SharedData(t, "tok512.bin")
	out := filepath.Join(t.TempDir(), "hf")
	var so, se bytes.Buffer
	require.Equal(t, 0, runMain([]string{"convert", "llama2c", bin, "--out", out}, &env{stdout: &so, stderr: &se}), se.String())
	assert.Contains(t, se.String(), "tokenizer.json")

	hf, err := tokenizer.Load(filepath.Join(out, "tokenizer.json"))
	require.NoError(t, err)
	ref, err := tokenizer.LoadLlama2C(tokBin)
	require.NoError(t, err)
	for _, s := range []string{"Once upon a time, there was a little girl named Lily.", "He said: \"Wow!\" and ran home."} {
		assert.Equal(t, ref.Encode(s, true), hf.Encode(s, true), s)
	}

	// --tokenizer none skips it.
	out2 := filepath.Join(t.TempDir(), "hf2")
	require.Equal(t, 0, runMain([]string{"convert", "llama2c", bin, "--out", out2, "--tokenizer", "none"}, &env{stdout: &so, stderr: &se}))
	_, err = os.Stat(filepath.Join(out2, "tokenizer.json"))
	assert.True(t, os.IsNotExist(err))
}

func TestConvertTokenizerVocabMismatch(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	dir := t.TempDir()
	// A tokenizer file with 3 tokens: int32 max_len, then (score, len, bytes) per token.
	var b bytes.Buffer
	b.Write([]byte{1, 0, 0, 0})
	for _, p := range []string{"a", "b", "c"} {
		b.Write([]byte{0, 0, 0, 0, 1, 0, 0, 0})
		b.WriteString(p)
	}
	tok := filepath.Join(dir, "tiny.bin")
	require.NoError(t, os.WriteFile(tok, b.Bytes(), 0o644))
	var so, se bytes.Buffer
	code := runMain([]string{"convert", "llama2c", bin, "--out", filepath.Join(dir, "o"), "--tokenizer", tok}, &env{stdout: &so, stderr: &se})
	assert.Equal(t, 1, code)
	assert.Contains(t, se.String(), "has 3 tokens but")
}
