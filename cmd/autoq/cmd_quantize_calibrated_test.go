package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `autoq quantize --method gptq --search act-mse` writes exactly what the gptq packages
// compute for the same calibration windows: the CLI only wires them to the checkpoint.
func TestQuantizeGPTQMatchesLibrary(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	tokPath := testutil.SharedData(t, "tok512.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	out := filepath.Join(t.TempDir(), "q")
	rep, stderr := quantizeJSON(t, bin, "--bits", "4", "--granularity", "group", "--group-size", "32", "--asym",
		"--method", "gptq", "--search", "act-mse", "--data", data, "--tokenizer", tokPath,
		"--calib-tokens", "2048", "--seq-len", "128", "--out", out)
	assert.Contains(t, stderr, "calibration: 2048 tokens in 16 windows")
	assert.Equal(t, "gptq+act-mse", rep.Search)
	require.Len(t, rep.Tensors, 35, "every linear layer of the 5-layer model")

	// The library on the same windows.
	m, err := model.Load(bin)
	require.NoError(t, err)
	tok, err := tokenizer.Load(tokPath)
	require.NoError(t, err)
	w, err := eval.OpenWindows(data, tok, m.Config.Vocab, eval.DataOptions{SeqLen: 128, MaxTokens: 2048, Split: "calib"})
	require.NoError(t, err)
	var seqs [][]int
	for {
		s, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		seqs = append(seqs, s)
	}
	w.Close()
	hs, err := collect.Hessians(m, seqs, 8, nil)
	require.NoError(t, err)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	want, _, err := collect.QuantizeModel(m, hs, collect.GPTQ, gptq.ClipActMSE, s, gptq.Options{ActOrder: true, Damp: 0.01})
	require.NoError(t, err)

	src, err := checkpoint.OpenAny(out)
	require.NoError(t, err)
	defer src.Close()
	got, _, err := quantfile.ReadQuantized(src)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for layer, wq := range want {
		g := got[layer+".weight"]
		require.NotNil(t, g, layer)
		assert.Equal(t, wq.Scheme, g.Scheme, layer)
		assert.Equal(t, wq.Levels(), g.Levels(), layer)
		assert.Equal(t, wq.Scales, g.Scales, layer)
		assert.Equal(t, wq.Zeros, g.Zeros, layer)
	}
	// down_proj has 172 inputs: group 32 does not divide it, the next divisor (43) is used.
	assert.Equal(t, 43, got["model.layers.0.mlp.down_proj.weight"].Scheme.GroupSize)
}

func TestQuantizeCalibratedUsageErrors(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	for _, args := range [][]string{
		{"quantize", bin, "--method", "gptq"},                   // no --data
		{"quantize", bin, "--search", "act-mse"},                // no --data
		{"quantize", bin, "--data", "x.txt"},                    // --data without a calibrated method
		{"quantize", bin, "--method", "awq", "--data", "x.txt"}, // unknown method
		{"quantize", "--method", "gptq", "--data", "x.txt"},     // no model
		{"quantize", bin, "--method", "gptq", "--search", "percentile", "--data", "x.txt"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}
}

// A checkpoint directory whose config.json is broken is refused (it would be copied into
// the output), with an error naming the file.
func TestQuantizeRefusesBrokenConfig(t *testing.T) {
	dir := convertReal(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("not json"), 0o644))
	code, _, stderr := runCLI("quantize", dir, "--out", filepath.Join(t.TempDir(), "q"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "config.json")
}
