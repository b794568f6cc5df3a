package safetensors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeSharded writes a two-shard checkpoint by hand (the index JSON is literal).
func writeSharded(t *testing.T, index string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []NamedTensor{
		{"model.embed_tokens.weight", tensor.FromF32([]float32{1, 2, 3, 4}, 2, 2)},
		{"model.norm.weight", tensor.FromF32([]float32{5, 6}, 2)},
	}, map[string]string{"format": "pt"}))
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []NamedTensor{
		{"lm_head.weight", tensor.FromF32([]float32{7, 8, 9, 10}, 2, 2)},
		{"stray", tensor.FromF32([]float32{0}, 1)}, // in a shard but not in weight_map: ignored
	}, nil))
	require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644))
	return dir
}

const goodIndex = `{"metadata":{"total_size":40},"weight_map":{
 "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
 "model.norm.weight":"model-00001-of-00002.safetensors",
 "lm_head.weight":"model-00002-of-00002.safetensors"}}`

func TestShardedCheckpoint(t *testing.T) {
	dir := writeSharded(t, goodIndex)
	for _, path := range []string{dir, filepath.Join(dir, IndexFileName)} {
		c, err := OpenCheckpoint(path)
		require.NoError(t, err, path)
		assert.Equal(t, []string{"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}, c.Names())
		w, err := c.Tensor("lm_head.weight")
		require.NoError(t, err)
		assert.Equal(t, []float32{7, 8, 9, 10}, w.F32())
		info, ok := c.Info("model.norm.weight")
		require.True(t, ok)
		assert.Equal(t, []int{2}, info.Shape)
		_, ok = c.Info("stray")
		assert.False(t, ok, "tensors outside weight_map are not part of the checkpoint")
		assert.Equal(t, "pt", c.Metadata()["format"])
		assert.Len(t, c.Files(), 2)
		require.NoError(t, c.Close())
	}
}

func TestShardedCheckpointErrors(t *testing.T) {
	cases := map[string]struct{ index, want string }{
		"bad json":      {`{"weight_map":`, "invalid JSON"},
		"empty map":     {`{"weight_map":{}}`, "missing or empty weight_map"},
		"escaping path": {`{"weight_map":{"a":"../x.safetensors"}}`, `tensor "a": shard "../x.safetensors" is not a file name`},
		"missing shard": {`{"weight_map":{"a":"nope.safetensors"}}`, "nope.safetensors"},
		"wrong shard":   {`{"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors"}}`, `tensor "lm_head.weight": not found in shard model-00001-of-00002.safetensors`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeSharded(t, c.index)
			_, err := OpenCheckpoint(dir)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestSingleFileCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, SingleFileName)
	require.NoError(t, WriteFile(p, []NamedTensor{{"w", tensor.FromF32([]float32{3}, 1)}}, map[string]string{"k": "v"}))
	for _, path := range []string{dir, p} {
		c, err := OpenCheckpoint(path)
		require.NoError(t, err)
		assert.Equal(t, []string{"w"}, c.Names())
		assert.Equal(t, map[string]string{"k": "v"}, c.Metadata())
		require.NoError(t, c.Close())
	}
	_, err := OpenCheckpoint(t.TempDir())
	assert.ErrorContains(t, err, "neither model.safetensors nor model.safetensors.index.json")
}
