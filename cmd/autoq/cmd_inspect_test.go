package main

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInspectHandMade(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, safetensors.WriteFile(p, []safetensors.NamedTensor{
		{Name: "a", T: tensor.New(tensor.BF16, 3, 5)},
		{Name: "b", T: tensor.New(tensor.I8, 7)},
	}, map[string]string{"k": "v"}))

	code, stdout, stderr := runCLI("inspect", p)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "a     BF16   [3 5]  30")
	assert.Contains(t, stdout, "2 tensors, 22 elements, 37 B (37 bytes)")

	code, stdout, _ = runCLI("inspect", p, "--json")
	require.Equal(t, 0, code)
	rep := decodeJSON[autoquant.InspectReport](t, stdout)
	require.Len(t, rep.Tensors, 2)
	assert.Equal(t, autoquant.InspectRow{Name: "b", DType: "I8", Shape: []int{7}, Bytes: 7}, rep.Tensors[1])
	assert.Equal(t, int64(37), rep.Totals.Bytes)
	assert.Equal(t, "v", rep.Metadata["k"])
}

func TestInspectRealLlama2CAndConverted(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	for _, path := range []string{bin, convertReal(t)} {
		code, stdout, stderr := runCLI("inspect", path, "--json")
		require.Equal(t, 0, code, stderr)
		rep := decodeJSON[autoquant.InspectReport](t, stdout)
		assert.Equal(t, 47, rep.Totals.Tensors, path)
		assert.Equal(t, int64(260032), rep.Totals.Elements, path)
		assert.Equal(t, int64(4*260032), rep.Totals.Bytes, path)
		assert.Equal(t, "LlamaForCausalLM", rep.Architecture)
	}
}

func TestInspectErrors(t *testing.T) {
	code, _, stderr := runCLI("inspect")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "expected one PATH")
	code, _, stderr = runCLI("inspect", filepath.Join(t.TempDir(), "missing.safetensors"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "missing.safetensors")
	code, _, _ = runCLI("inspect", "--bogus")
	assert.Equal(t, 2, code)
	code, stdout, stderr := runCLI("inspect", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout+stderr, "Usage: autoq inspect PATH")
}

func TestInspectQuantizedShowsSchemes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q")
	code, _, stderr := runCLI("quantize", "--bits", "4", "--granularity", "group", "--group-size", "64", "--asym", "--out", out)
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr := runCLI("inspect", out, "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.InspectReport](t, stdout)
	byName := map[string]autoquant.InspectRow{}
	for _, r := range rep.Tensors {
		byName[r.Name] = r
	}
	q := byName["model.layers.0.mlp.down_proj.weight.qweight"]
	assert.Equal(t, "w4g64a", q.Quant)
	assert.Equal(t, []int{64, 96}, q.Shape, "192 inputs packed two per byte")
	assert.Equal(t, []int{64, 3}, byName["model.layers.0.mlp.down_proj.weight.scales"].Shape)
	assert.Equal(t, "I32", byName["model.layers.0.mlp.down_proj.weight.zeros"].DType)
	assert.Empty(t, byName["model.norm.weight"].Quant)
	assert.Equal(t, "F32", byName["model.embed_tokens.weight"].DType, "embeddings kept")
}
