package main

import (
	"testing"

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
