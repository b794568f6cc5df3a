package main

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// calib merge refuses sets that are not one whole run: a missing shard, shards of another
// sharding or other settings, and state files from before shard records. Each error names
// the files and what differs, and nothing is written.
func TestCalibMergeRefusesIncompleteOrMixedShards(t *testing.T) {
	dir := t.TempDir()
	writeActivationDumps(t, dir, 4)
	glob := filepath.Join(dir, "batch_*.safetensors")
	shard := func(out, spec string, extra ...string) string {
		args := append([]string{"calibrate", "--activations", glob, "--device", "cpu", "--shard", spec, "--histograms", out}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		return filepath.Join(out, map[string]string{"0/2": "histograms-00000-of-00002.json", "1/2": "histograms-00001-of-00002.json",
			"1/3": "histograms-00001-of-00003.json"}[spec])
	}
	a := shard(filepath.Join(dir, "run"), "0/2")
	b := shard(filepath.Join(dir, "run"), "1/2")
	out := filepath.Join(dir, "merged.json")
	merge := func(files ...string) (int, string) {
		code, _, stderr := runCLI(append(append([]string{"calib", "merge"}, files...), "--device", "cpu", "--out", out)...)
		return code, stderr
	}

	code, stderr := merge(a)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "incomplete shard set: 1 of 2 shards given ("+a+"); missing shard 1")

	code, stderr = merge(a, shard(filepath.Join(dir, "three"), "1/3"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "histograms-00001-of-00003.json) comes from a 3-shard run, shard 0 of 2 ("+a+") from a 2-shard run")

	other := shard(filepath.Join(dir, "chan"), "1/2", "--channel-absmax")
	code, stderr = merge(a, other)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "shard 1 of 2 ("+other+") has channel_absmax true, shard 0 of 2 ("+a+") has false")

	st, err := calib.ReadStateFile(b)
	require.NoError(t, err)
	st.Shard = nil
	old := filepath.Join(dir, "old.json")
	require.NoError(t, calib.WriteStateFile(old, st))
	code, stderr = merge(a, old)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, old+": no shard record")
	assert.NoFileExists(t, out)

	code, stderr = merge(filepath.Join(dir, "run"))
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, out)
}

// In model mode the windowing is part of the record: a shard made with another --seq-len
// is refused, naming both files and both values.
func TestCalibMergeRefusesModelShardsWithOtherSeqLen(t *testing.T) {
	dir := t.TempDir()
	base := append(realCalibArgs(t), "--tokens", "600")
	run := func(hist, spec, seqLen string) {
		code, _, stderr := runCLI(append([]string{"calibrate"}, append(base, "--shard", spec, "--seq-len", seqLen, "--histograms", hist)...)...)
		require.Equal(t, 0, code, stderr)
	}
	run(filepath.Join(dir, "a"), "0/2", "64")
	run(filepath.Join(dir, "b"), "1/2", "32")
	a := filepath.Join(dir, "a", "histograms-00000-of-00002.json")
	b := filepath.Join(dir, "b", "histograms-00001-of-00002.json")
	code, _, stderr := runCLI("calib", "merge", b, a, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "shard 1 of 2 ("+b+") has seq_len 32, shard 0 of 2 ("+a+") has 64")

	run(filepath.Join(dir, "c"), "1/2", "64")
	b64 := filepath.Join(dir, "c", "histograms-00001-of-00002.json")
	code, _, stderr = runCLI("calib", "merge", b64, a, "--device", "cpu")
	assert.Equal(t, 0, code, stderr)
}
