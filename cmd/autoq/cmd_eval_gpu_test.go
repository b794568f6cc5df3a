package main

import (
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
)

// Usage errors of --device are found before any device is opened (any build, any machine).
func TestEvalDeviceUsageErrors(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	code, _, stderr := runCLI("eval", "--model", bin, "--data", data, "--device", "cuda", "--quantized", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "runs --scheme variants only")
	code, _, stderr = runCLI("eval", "--model", bin, "--data", data, "--device", "cuda", "--scheme", "w8a8s")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "static activation scales")
}

// --device auto falls back to the CPU with a note when there is no usable GPU (on a GPU
// machine it runs there; both give a full-precision row and the scheme).
func TestEvalDeviceAuto(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	code, out, stderr := runCLI("eval", "--model", bin, "--data", data, "--device", "auto", "--tokens", "256", "--seq-len", "64", "--scheme", "w4g32")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "w4g32")
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		assert.Contains(t, stderr, "running on the CPU")
		assert.Contains(t, out, "fp32")
	} else {
		assert.Contains(t, out, "fp16")
	}
}
