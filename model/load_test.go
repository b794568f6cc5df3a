package model

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The stories260K architecture as a Hugging Face config.json would state it.
const storiesConfigJSON = `{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5,
  "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
  "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "tie_word_embeddings": true, "torch_dtype": "float32"
}`

// writeHFDir writes the llama2.c model's HF-named tensors (converted to dtype) and config.
func writeHFDir(t *testing.T, dtype tensor.DType) string {
	t.Helper()
	_, ts, err := readLlama2C(testutil.SharedData(t, "stories260K.bin"), true)
	require.NoError(t, err)
	var named []safetensors.NamedTensor
	for name, tt := range ts {
		named = append(named, safetensors.NamedTensor{Name: name, T: tt.Convert(dtype)})
	}
	sort.Slice(named, func(i, j int) bool { return named[i].Name < named[j].Name })
	dir := t.TempDir()
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), named, nil))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(storiesConfigJSON), 0o644))
	return dir
}

func TestHFDirectoryGivesTheSameLogitsAsLlama2C(t *testing.T) {
	bin, err := Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
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
	cfg, ts, err := readLlama2C(testutil.SharedData(t, "stories260K.bin"), true)
	require.NoError(t, err)
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
	bad := []byte(storiesConfigJSON)
	bad = []byte(string(bad[:len(bad)-1]) + `, "rope_scaling": {"rope_type": "llama3"}}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), bad, 0o644))
	_, err = Load(dir)
	assert.ErrorContains(t, err, "rope scaling \"llama3\" is not supported")

	_, err = Load(filepath.Join(t.TempDir(), "missing.bin"))
	assert.ErrorContains(t, err, "missing.bin")
}
