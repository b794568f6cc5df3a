package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An autoq-layout checkpoint written by `autoq quantize` evaluates exactly like the same
// scheme fake-quantized on the fly (w8: per-channel symmetric, max search): the stored
// levels and scales are the ones the evaluation plugs in.
func TestEvalQuantizedAutoqLayout(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	out := filepath.Join(t.TempDir(), "w8")
	code, _, stderr := runCLI("quantize", bin, "--bits", "8", "--out", out)
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "1024", "--seq-len", "128",
		"--scheme", "w8", "--quantized", out, "--json")
	require.Equal(t, 0, code, stderr)
	var rep autoquant.EvalReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Len(t, rep.Results, 3) // fp32, w8, the directory
	w8, dir := rep.Results[1], rep.Results[2]
	assert.Equal(t, "w8", w8.Scheme)
	assert.Equal(t, "w8", dir.Scheme) // labelled by the directory's name
	assert.Equal(t, w8.Perplexity, dir.Perplexity)
	assert.Equal(t, w8.KL, dir.KL)
	assert.NotEqual(t, rep.Results[0].Perplexity, dir.Perplexity, "the quantized weights were plugged in")
}
