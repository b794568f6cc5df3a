package autoquant

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dry run reports the layout without writing; the written checkpoint matches it.
func TestSynthReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s")
	dry, err := Synth(Env{}, SynthOptions{Shape: "llama2-7b", Layers: 2, DryRun: true, Out: out})
	require.NoError(t, err)
	assert.Equal(t, int64(666_914_816), dry.Params)
	assert.Equal(t, int64(2*666_914_816), dry.Bytes)
	assert.Equal(t, "model.embed_tokens.weight", dry.LargestName)
	assert.Equal(t, 32, dry.ShapeLayers)
	require.NoFileExists(t, out)

	rep, err := Synth(Env{}, SynthOptions{Shape: "tiny", Out: out, ShardSize: "1MB"})
	require.NoError(t, err)
	assert.Len(t, rep.Shards, 5)
	assert.Greater(t, rep.Seconds, 0.0)
	ck := testutil.Open(t, safetensors.OpenCheckpoint, out)
	assert.Len(t, ck.Files(), 5)
	assert.Len(t, ck.Names(), rep.Tensors)
}

// Quantizing a synthetic checkpoint: kept tensors are copied file to file byte for byte,
// and each quantized weight holds what quant.QuantizeTensor gives for it.
func TestQuantizeSynthOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	_, err := Synth(Env{}, SynthOptions{Shape: "tiny", Out: dir, ShardSize: "1MB"})
	require.NoError(t, err)
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}
	out := filepath.Join(t.TempDir(), "q")
	rep, err := Quantize(Env{}, QuantizeOptions{Path: dir, Scheme: s, Search: "max", Method: "rtn", Device: "cpu", Out: out})
	require.NoError(t, err)
	assert.Len(t, rep.Kept, 7)

	src := testutil.Open(t, safetensors.OpenCheckpoint, dir)
	dst := testutil.Open(t, safetensors.OpenCheckpoint, out)
	for _, n := range rep.Kept {
		a, err := src.Tensor(n)
		require.NoError(t, err)
		b, err := dst.Tensor(n)
		require.NoError(t, err)
		assert.Equal(t, a.Data, b.Data, n)
		assert.Equal(t, a.Shape, b.Shape, n)
	}
	qs, _, err := quantfile.ReadQuantized(dst)
	require.NoError(t, err)
	require.Len(t, qs, len(rep.Tensors))
	for _, row := range rep.Tensors {
		w, err := src.Tensor(row.Name)
		require.NoError(t, err)
		want, err := quant.QuantizeTensor(row.Name, w, s, quant.SearchOptions{})
		require.NoError(t, err)
		got := qs[row.Name]
		assert.Equal(t, want.Data, got.Data, row.Name)
		assert.Equal(t, want.Scales, got.Scales, row.Name)
		e, err := quant.CompareTensor(row.Name, w, got)
		require.NoError(t, err)
		assert.Equal(t, float64(e.MSE), float64(row.MSE), "%s: the report's error is CompareTensor's", row.Name)
	}
}

// An in-memory source (the built-in model) has no file to copy from: kept tensors are
// written from memory, byte for byte.
func TestQuantizeKeepsInMemoryTensors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q")
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	rep, err := Quantize(Env{}, QuantizeOptions{Scheme: s, Search: "max", Method: "rtn", Device: "cpu", Out: out})
	require.NoError(t, err)
	require.NotEmpty(t, rep.Kept)
	dst := testutil.Open(t, safetensors.OpenCheckpoint, out)
	byName := map[string][]byte{}
	for _, nt := range Synthetic().Tensors {
		byName[nt.Name] = nt.T.Data
	}
	for _, n := range rep.Kept {
		b, err := dst.Tensor(n)
		require.NoError(t, err)
		assert.Equal(t, byName[n], b.Data, n)
	}
}
