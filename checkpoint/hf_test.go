package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteHFRoundTripReal(t *testing.T) {
	cfg, ts, err := ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "hf")
	require.NoError(t, WriteHF(dir, cfg, ts))

	var cj map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &cj))
	assert.Equal(t, []any{"LlamaForCausalLM"}, cj["architectures"])
	assert.Equal(t, "llama", cj["model_type"])
	assert.Equal(t, 1e-5, cj["rms_norm_eps"])
	assert.Equal(t, 10000.0, cj["rope_theta"])
	assert.Equal(t, true, cj["tie_word_embeddings"])
	assert.Equal(t, "float32", cj["torch_dtype"])
	assert.Equal(t, 4.0, cj["num_key_value_heads"])

	back, err := ReadConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, *cfg, *back)

	c := testutil.Open(t, safetensors.OpenCheckpoint, dir)
	require.Len(t, c.Names(), len(ts))
	for _, nt := range ts {
		got, err := c.Tensor(nt.Name)
		require.NoError(t, err)
		assert.Equal(t, nt.T.Shape, got.Shape, nt.Name)
		assert.Equal(t, nt.T.Data, got.Data, nt.Name)
	}
}

func TestWriteHFFailureKeepsOld(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644))
	bad := &LlamaConfig{Dim: 6, HiddenDim: 4, Layers: 1, Heads: 4, KVHeads: 1, Vocab: 3, MaxSeq: 4}
	err := WriteHF(dir, bad, nil)
	assert.ErrorContains(t, err, "does not divide")
	_, err = os.Stat(filepath.Join(dir, "keep"))
	assert.NoError(t, err)
}

func TestReadConfig(t *testing.T) {
	write := func(t *testing.T, s string) string {
		d := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(d, "config.json"), []byte(s), 0o644))
		return d
	}
	qwen := `{"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,
	"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,"max_position_embeddings":32768,
	"rope_theta":1000000.0,"rms_norm_eps":1e-06,"tie_word_embeddings":true,"torch_dtype":"bfloat16"}`
	c, err := ReadConfig(write(t, qwen))
	require.NoError(t, err)
	assert.Equal(t, LlamaConfig{Dim: 896, HiddenDim: 4864, Layers: 24, Heads: 14, KVHeads: 2, Vocab: 151936, MaxSeq: 32768,
		RopeTheta: 1e6, NormEps: 1e-6, TiedEmbeddings: true, Architecture: "Qwen2ForCausalLM", Bias: true, TorchDType: "bfloat16"}, *c)
	assert.Equal(t, 64, c.HeadDim())

	llama3 := `{"architectures":["LlamaForCausalLM"],"hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,
	"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":131072,
	"rope_scaling":{"factor":32.0,"rope_type":"llama3"}}`
	c, err = ReadConfig(write(t, llama3))
	require.NoError(t, err)
	assert.Equal(t, "llama3", c.RopeScaling)
	assert.Equal(t, 1e-6, c.NormEps, "transformers' default")
	assert.False(t, c.Bias)

	for name, tc := range map[string]struct{ cfg, want string }{
		"unknown arch": {`{"architectures":["GPT2LMHeadModel"]}`, `unsupported architecture "GPT2LMHeadModel"`},
		"no arch":      {`{"hidden_size":4}`, `no "architectures" entry`},
		"bad json":     {`{`, "invalid JSON"},
		"zero layers":  {`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_attention_heads":2,"vocab_size":4,"max_position_embeddings":4}`, "num_hidden_layers must be positive"},
		"head_dim":     {`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"max_position_embeddings":4,"head_dim":8}`, "head_dim 8 differs"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadConfig(write(t, tc.cfg))
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err = ReadConfig(t.TempDir())
	assert.ErrorContains(t, err, "config.json")
}
