package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeHFDir writes the llama2.c model as a Hugging Face directory with checkpoint.WriteHF,
// its tensors converted to dtype.
func writeHFDir(t *testing.T, dtype tensor.DType) string {
	t.Helper()
	cfg, named, err := checkpoint.ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	for i := range named {
		named[i].T = named[i].T.Convert(dtype)
	}
	dir := filepath.Join(t.TempDir(), "hf")
	require.NoError(t, checkpoint.WriteHF(dir, cfg, named))
	return dir
}

func TestHFDirectoryGivesTheSameLogitsAsLlama2C(t *testing.T) {
	bin := loadStories(t)
	hf, err := Load(writeHFDir(t, tensor.F32))
	require.NoError(t, err)
	seq := [][]int{append([]int{1}, readGreedyRef(t)[:64]...)}
	a, err := bin.Forward(seq, nil)
	require.NoError(t, err)
	b, err := hf.Forward(seq, nil)
	require.NoError(t, err)
	assert.Equal(t, a[0], b[0], "same F32 weights, same arithmetic")
}

// A BF16 checkpoint runs on the BF16-rounded weights in F32: equal to an F32 model built
// from those rounded weights, and close to (not equal to) the original.
func TestBF16CheckpointIsConvertedExactly(t *testing.T) {
	hf, err := Load(writeHFDir(t, tensor.BF16))
	require.NoError(t, err)
	cfg, ts := readStories(t, false)
	rounded := map[string]*tensor.Tensor{}
	for name, tt := range ts {
		rounded[name] = tt.Convert(tensor.BF16).Convert(tensor.F32)
	}
	ref, err := New(cfg, rounded)
	require.NoError(t, err)
	orig, err := New(cfg, ts)
	require.NoError(t, err)
	seq := [][]int{append([]int{1}, readGreedyRef(t)[:64]...)}
	a, _ := hf.Forward(seq, nil)
	b, _ := ref.Forward(seq, nil)
	c, _ := orig.Forward(seq, nil)
	assert.Equal(t, b[0], a[0])
	d := maxAbsDiff(a[0], c[0])
	assert.Greater(t, d, 0.0)
	assert.Less(t, d, 0.5)
}

func TestHFDirectoryErrors(t *testing.T) {
	dir := writeHFDir(t, tensor.F32)
	cfg := `{"architectures": ["GPT2LMHeadModel"], "hidden_size": 64}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
	_, err := Load(dir)
	assert.ErrorContains(t, err, "unsupported architecture \"GPT2LMHeadModel\"")

	dir = writeHFDir(t, tensor.F32)
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	bad := strings.Replace(string(raw), "{", `{"rope_scaling": {"rope_type": "llama3"},`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(bad), 0o644))
	_, err = Load(dir)
	assert.ErrorContains(t, err, "rope scaling \"llama3\" is not supported")

	_, err = Load(filepath.Join(t.TempDir(), "missing.bin"))
	assert.ErrorContains(t, err, "missing.bin")
}

func TestTruncatedLlama2CFileIsAnError(t *testing.T) {
	raw, err := os.ReadFile(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	p := testutil.WriteFile(t, t.TempDir(), "cut.bin", raw[:len(raw)/2])
	_, err = Load(p)
	assert.ErrorContains(t, err, "cut.bin")
}
