package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvalJSONOnRealModel(t *testing.T) {
	bin, data := testutil.Stories(t)
	code, out, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "2048", "--seq-len", "128",
		"--scheme", "w8,w4g32", "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.EvalReport](t, out)
	require.Len(t, rep.Results, 3)
	fp, w8, w4 := rep.Results[0], rep.Results[1], rep.Results[2]
	assert.Equal(t, []string{"fp32", "w8", "w4g32"}, []string{fp.Scheme, w8.Scheme, w4.Scheme})
	assert.Equal(t, 2048, fp.Tokens)
	assert.Equal(t, 16, fp.Windows)
	assert.False(t, fp.HasRef)
	assert.True(t, w8.HasRef)
	assert.Equal(t, fp.Perplexity, w8.RefPPL)
	assert.InDelta(t, math.Exp(fp.NLL), fp.Perplexity, 1e-9)
	assert.InDelta(t, 100*(w4.Perplexity/fp.Perplexity-1), w4.PPLIncrease, 1e-9)
	assert.Less(t, math.Abs(w8.PPLIncrease), 1.0)
	assert.Greater(t, w4.PPLIncrease, w8.PPLIncrease)
	assert.Greater(t, w4.KL, w8.KL)
}

// The Hugging Face directory from `autoq convert` evaluates to the same perplexity.
func TestEvalHFDirectoryMatchesLlama2C(t *testing.T) {
	dir := convertReal(t)
	data := testutil.SharedData(t, "tinystories_val.txt")
	tok := testutil.SharedData(t, "tok512.bin")
	ppl := func(model string) float64 {
		code, out, stderr := runCLI("eval", "--model", model, "--tokenizer", tok, "--data", data, "--tokens", "1024", "--seq-len", "128", "--json")
		require.Equal(t, 0, code, stderr)
		rep := decodeJSON[autoquant.EvalReport](t, out)
		return rep.Results[0].Perplexity
	}
	assert.InDelta(t, ppl(testutil.SharedData(t, "stories260K.bin")), ppl(dir), 1e-5)
}

func TestEvalErrors(t *testing.T) {
	bin, data := testutil.Stories(t)
	code, _, stderr := runCLI("eval", "--model", bin)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--model and --data are required")
	code, _, stderr = runCLI("eval", "--model", bin, "--data", data, "--scheme", "w9")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unknown scheme \"w9\"")

	// A llama2.c tokenizer with 3 tokens does not belong to a 512-token model.
	tok := filepath.Join(t.TempDir(), "tok3.bin")
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 8)
	for _, p := range []string{"<unk>", "<s>", "</s>"} {
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	require.NoError(t, os.WriteFile(tok, b, 0o644))
	code, _, stderr = runCLI("eval", "--model", bin, "--tokenizer", tok, "--data", data)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "tokenizer has 3 tokens but the model's vocabulary has 512")

	empty := filepath.Join(t.TempDir(), "empty.txt")
	require.NoError(t, os.WriteFile(empty, []byte("\n\n"), 0o644))
	code, _, stderr = runCLI("eval", "--model", bin, "--data", empty)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "empty.txt: no data")
}

// An export of W8A8 (dynamic) layers evaluates exactly like the w8a8 fake-quant scheme:
// the same levels and scales, read back from disk.
func TestEvalQuantizedExportEqualsScheme(t *testing.T) {
	bin, data := testutil.Stories(t)
	m, err := model.Load(bin)
	require.NoError(t, err)
	em := &export.Model{Config: map[string]any{"architectures": []string{"LlamaForCausalLM"}}}
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		q, err := quant.Quantize(name, w.F32(), w.Shape[0], w.Shape[1], s, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		em.Layers = append(em.Layers, export.Layer{Name: name, Q: q, Act: &export.Activation{Dynamic: true}})
	}
	dir := filepath.Join(t.TempDir(), "w8a8-export")
	require.NoError(t, export.Write(dir, em, export.Options{}))
	code, out, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "1024", "--seq-len", "128",
		"--scheme", "w8a8", "--quantized", dir, "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.EvalReport](t, out)
	require.Len(t, rep.Results, 3)
	assert.Equal(t, "w8a8-export", rep.Results[2].Scheme)
	assert.Greater(t, rep.Results[1].KL, 0.0)
	assert.Equal(t, rep.Results[1].Perplexity, rep.Results[2].Perplexity)
	assert.Equal(t, rep.Results[1].KL, rep.Results[2].KL)
}

// Static activation scales from a calibration table equal the ones eval calibrates itself
// from the same tokens with the same method.
func TestEvalStaticScalesFromCalibrationTable(t *testing.T) {
	bin, data := testutil.Stories(t)
	m, wins := storiesCalib(t, 2048)
	var hs []*calib.Histogram
	byName := map[string]*calib.Histogram{}
	for _, n := range m.LinearNames() {
		h := calib.NewHistogram(n + ".input")
		hs = append(hs, h)
		byName[n] = h
	}
	for _, win := range wins {
		_, err := m.Forward([][]int{win}, func(n string, x []float32, M, K int) { byName[n].AddF32(x[:M*K]) })
		require.NoError(t, err)
	}
	opt := calib.DefaultOptions(calib.MethodMax)
	res, err := calib.ComputeAll(hs, opt)
	require.NoError(t, err)
	tab, err := calib.NewTable(hs, res, opt, 16)
	require.NoError(t, err)
	tabPath := filepath.Join(t.TempDir(), "calib.json")
	require.NoError(t, tab.WriteFile(tabPath))

	run := func(extra ...string) autoquant.EvalRow {
		args := append([]string{"eval", "--model", bin, "--data", data, "--tokens", "1024", "--seq-len", "128", "--scheme", "w8a8s", "--json"}, extra...)
		code, out, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		rep := decodeJSON[autoquant.EvalReport](t, out)
		return rep.Results[1]
	}
	fromTable := run("--calib", tabPath)
	self := run("--act-calib", "max", "--calib-tokens", "2048", "--batch", "1")
	assert.Equal(t, self.Perplexity, fromTable.Perplexity)
	assert.Equal(t, self.KL, fromTable.KL)

	tab.Tensors = tab.Tensors[1:]
	require.NoError(t, tab.WriteFile(tabPath))
	code, _, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "256", "--scheme", "w8a8s", "--calib", tabPath)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "has no entry for model.layers.")
}

// An autoq-layout checkpoint written by `autoq quantize` evaluates exactly like the same
// scheme fake-quantized on the fly (w8: per-channel symmetric, max search): the stored
// levels and scales are the ones the evaluation plugs in.
func TestEvalQuantizedAutoqLayout(t *testing.T) {
	bin, data := testutil.Stories(t)
	out := filepath.Join(t.TempDir(), "w8")
	code, _, stderr := runCLI("quantize", bin, "--bits", "8", "--out", out)
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "1024", "--seq-len", "128",
		"--scheme", "w8", "--quantized", out, "--json")
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.EvalReport](t, stdout)
	require.Len(t, rep.Results, 3) // fp32, w8, the directory
	w8, dir := rep.Results[1], rep.Results[2]
	assert.Equal(t, "w8", w8.Scheme)
	assert.Equal(t, "w8", dir.Scheme) // labelled by the directory's name
	assert.Equal(t, w8.Perplexity, dir.Perplexity)
	assert.Equal(t, w8.KL, dir.KL)
	assert.NotEqual(t, rep.Results[0].Perplexity, dir.Perplexity, "the quantized weights were plugged in")
}

// Usage errors of --device are found before any device is opened (any build, any machine).
func TestEvalDeviceUsageErrors(t *testing.T) {
	bin, data := testutil.Stories(t)
	code, _, stderr := runCLI("eval", "--model", bin, "--data", data, "--device", "cuda", "--quantized", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "runs --scheme variants only")
	code, _, stderr = runCLI("eval", "--model", bin, "--data", data, "--device", "cuda", "--scheme", "w8a8s")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "static activation scales")
}

// --device auto falls back to the CPU with a note when there is no usable GPU (on a GPU
// machine it runs there; both give a full-precision row and the scheme).
func TestEvalDeviceAuto(t *testing.T) {
	bin, data := testutil.Stories(t)
	code, out, stderr := runCLI("eval", "--model", bin, "--data", data, "--device", "auto", "--tokens", "256", "--seq-len", "64", "--scheme", "w4g32")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "w4g32")
	if n, err := backend.CUDADevices(); err != nil || n == 0 {
		assert.Contains(t, stderr, "running on the CPU")
		assert.Contains(t, out, "fp32")
	} else {
		assert.Contains(t, out, "fp16")
	}
}
