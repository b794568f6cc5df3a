package rotate

import (
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Streaming from a checkpoint on disk, one tensor at a time, gives the bits of the
// in-memory Checkpoint, in the order and shapes Infos declares.
func TestStreamFromDiskMatchesCheckpoint(t *testing.T) {
	cfg := modelCases()[2].cfg // tied, biases
	cfg.Architecture, cfg.TorchDType = "LlamaForCausalLM", "float32"
	ts := named(llamatest.Tensors(cfg, 8, llamatest.RandomNorms))
	dir := t.TempDir()
	require.NoError(t, checkpoint.WriteHF(dir, &cfg, ts))

	_, want, err := Checkpoint(cfg, ts, 3, Options{})
	require.NoError(t, err)

	src, err := checkpoint.OpenAny(dir)
	require.NoError(t, err)
	defer src.Close()
	require.NotNil(t, src.Config)
	r, err := New(*src.Config, 3, Options{})
	require.NoError(t, err)
	var in []safetensors.TensorInfo
	for _, name := range src.Names() {
		info, ok := src.Info(name)
		require.True(t, ok)
		in = append(in, info)
	}
	infos, err := r.Infos(in)
	require.NoError(t, err)
	wantBy := byName(want)
	require.Len(t, infos, len(want))
	for _, info := range infos {
		w, ok := wantBy[info.Name]
		require.True(t, ok, info.Name)
		assert.Equal(t, w.Shape, info.Shape, info.Name)
		assert.Equal(t, tensor.F32, info.DType)
		got, err := r.Tensor(src, info.Name)
		require.NoError(t, err)
		assert.Equal(t, w.Data, got.Data, info.Name)
	}
	assert.Equal(t, "lm_head.weight", infos[len(infos)-1].Name)
	assert.Equal(t, []int{cfg.Vocab, cfg.Dim}, infos[len(infos)-1].Shape)
}

func TestInfosChecksShapesUpFront(t *testing.T) {
	cfg := modelCases()[0].cfg
	r, err := New(cfg, 1, Options{})
	require.NoError(t, err)
	var in []safetensors.TensorInfo
	for _, nt := range named(llamatest.Tensors(cfg, 1, llamatest.PatternNorms)) {
		shape := nt.T.Shape
		if nt.Name == "model.layers.1.mlp.down_proj.weight" {
			shape = []int{cfg.HiddenDim, cfg.Dim}
		}
		in = append(in, safetensors.TensorInfo{Name: nt.Name, DType: nt.T.DType, Shape: shape})
	}
	_, err = r.Infos(in)
	require.ErrorContains(t, err, "tensor model.layers.1.mlp.down_proj.weight has shape [24 16], want [16 24]")
}
