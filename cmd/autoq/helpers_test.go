package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/require"
)

// runCLI runs autoq with args and returns the exit code, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runMain(args, &env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

// needCUDA skips a GPU test (what names it) on a machine without a CUDA device.
func needCUDA(t *testing.T, what string) {
	t.Helper()
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): %s skipped", err, what)
	}
}

// hasCUDA reports whether this build and machine have a CUDA device.
func hasCUDA() bool {
	n, err := backend.CUDADevices()
	return err == nil && n > 0
}

// decodeJSON parses a --json report of type T from a command's stdout.
func decodeJSON[T any](t *testing.T, stdout string) T {
	t.Helper()
	var rep T
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	return rep
}

// writeSynthFixture writes the synthetic model as a Hugging Face directory (modelDir) and
// its data as token ids (data, .jsonl: one window per line; calibration windows first, then
// evaluation windows: the loader splits at half the bytes).
func writeSynthFixture(modelDir, data string) error {
	src := autoquant.Synthetic()
	if err := checkpoint.WriteHF(modelDir, &src.Cfg, src.Tensors); err != nil {
		return err
	}
	d, err := autoquant.SyntheticData(src, 64, autoquant.DataOptions{CalibTokens: 1024, SensTokens: 512, EvalTokens: 1024})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, group := range [][][]int{d.Calib, d.Sens, d.Eval} {
		for _, w := range group {
			j, _ := json.Marshal(w)
			b.Write(j)
			b.WriteByte('\n')
		}
	}
	return os.WriteFile(data, b.Bytes(), 0o644)
}

// aqFixture writes the synthetic model and its data into a fresh directory and returns
// their paths.
func aqFixture(t *testing.T) (modelDir, data string) {
	t.Helper()
	dir := t.TempDir()
	modelDir, data = filepath.Join(dir, "model"), filepath.Join(dir, "data.jsonl")
	require.NoError(t, writeSynthFixture(modelDir, data))
	return modelDir, data
}

// storiesCalib loads the shared model and the windows of the first calibTokens tokens of
// the shared text's calibration split (seq-len 128, tokenized by tok512.bin): what a command
// run with --calib-tokens calibTokens --seq-len 128 calibrates on.
func storiesCalib(t *testing.T, calibTokens int) (*model.Model, [][]int) {
	t.Helper()
	m, tok := realdata.Model(t)
	return m, realdata.Windows(t, m, tok, "calib", 128, calibTokens)
}
