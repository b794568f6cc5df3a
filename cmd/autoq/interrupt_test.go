package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigCheckpoint writes a checkpoint whose MSE-searched int4 quantization takes a few
// seconds, so that a test can interrupt it while its output is being written.
func bigCheckpoint(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	r := testutil.Rand(3)
	var ts []safetensors.NamedTensor
	for l := 0; l < 6; l++ {
		ts = append(ts, safetensors.NamedTensor{Name: "model.layers." + string(rune('0'+l)) + ".mlp.up_proj.weight",
			T: tensor.FromF32(testutil.Gaussian(r, 1024*1024, 0.02), 1024, 1024)})
	}
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil))
	return dir
}

// startCLI runs the test binary as autoq (TestMain's AUTOQ_CLI_CHILD) with args.
func startCLI(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AUTOQ_CLI_CHILD=1", "AUTOQ_NO_PROGRESS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	return cmd, &stderr
}

// temporaries lists the autoq temporaries in dir.
func temporaries(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range es {
		if strings.Contains(e.Name(), ".autoq-tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitForTemporary polls dir until a temporary appears (the job is writing its output).
func waitForTemporary(t *testing.T, dir string, cmd *exec.Cmd, stderr *bytes.Buffer) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if len(temporaries(t, dir)) > 0 {
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("no temporary output appeared in %s; stderr:\n%s", dir, stderr)
}

// startQuantize starts a slow quantize of bigCheckpoint in a child process and returns once
// it writes its output (a temporary in outDir, published as out when done).
func startQuantize(t *testing.T) (model, outDir, out string, cmd *exec.Cmd, stderr *bytes.Buffer) {
	if testing.Short() {
		t.Skip("-short: writes and quantizes a 25 MB checkpoint in a child process")
	}
	model = bigCheckpoint(t)
	outDir = t.TempDir()
	out = filepath.Join(outDir, "q")
	cmd, stderr = startCLI(t, "quantize", model, "--device", "cpu", "--bits", "4", "--granularity", "group", "--group-size", "32", "--search", "mse", "--out", out)
	waitForTemporary(t, outDir, cmd, stderr)
	return model, outDir, out, cmd, stderr
}

// Ctrl-C while quantize writes its output: exit 130, the temporary directory removed and
// named, no output published.
func TestInterruptRemovesTemporaries(t *testing.T) {
	_, outDir, out, cmd, stderr := startQuantize(t)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr:\n%s", stderr)
	assert.Equal(t, 130, ee.ExitCode(), stderr.String())
	assert.Contains(t, stderr.String(), "interrupt: stopping")
	assert.Contains(t, stderr.String(), "removed the unfinished output "+outDir)
	assert.Empty(t, temporaries(t, outDir), "no temporary left")
	_, err = os.Stat(out)
	assert.True(t, os.IsNotExist(err), "nothing published")
}

// A crash (SIGKILL: no chance to clean up) leaves the temporary behind; the next run that
// writes beside it reports and removes it, then does its work.
func TestStaleTemporariesCleanedAtNextStart(t *testing.T) {
	model, outDir, out, cmd, _ := startQuantize(t)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	left := temporaries(t, outDir)
	require.NotEmpty(t, left, "a killed process cannot clean up")

	code, _, errOut := runCLI("quantize", model, "--device", "cpu", "--bits", "8", "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "a temporary left by an interrupted autoq run (pid ")
	assert.Contains(t, errOut, left[0])
	assert.Empty(t, temporaries(t, outDir))
	_, err := os.Stat(filepath.Join(out, "model.safetensors"))
	assert.NoError(t, err)
}
