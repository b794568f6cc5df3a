package main

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// verify takes autoq's own quantized layout as candidate: int8 per-channel passes a 1%
// gate, int4 per-channel (no groups) fails it.
func TestVerifyAutoqQuantizedLayout(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	dir := t.TempDir()
	w8, w4 := filepath.Join(dir, "w8"), filepath.Join(dir, "w4")
	code, _, stderr := runCLI("quantize", bin, "--bits", "8", "--out", w8)
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI("quantize", bin, "--bits", "4", "--out", w4)
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := runCLI("verify", "--baseline", bin, "--candidate", w8, "--data", data, "--tokens", "2048", "--seq-len", "128")
	assert.Equal(t, 0, code, "w8 passes: %s %s", stdout, stderr)
	code, stdout, stderr = runCLI("verify", "--baseline", bin, "--candidate", w4, "--data", data, "--tokens", "2048", "--seq-len", "128")
	assert.Equal(t, 1, code, "w4 per-channel fails the 1%% gate: %s %s", stdout, stderr)
}
