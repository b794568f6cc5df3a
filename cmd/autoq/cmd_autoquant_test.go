package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoQuantHelp(t *testing.T) {
	for _, c := range []string{"sensitivity", "plan", "export", "verify", "run"} {
		code, _, stderr := runCLI(c, "--help")
		assert.Equal(t, 0, code, c)
		assert.Contains(t, stderr, "--", c) // flag usage
		code, out, _ := runCLI("help", c)
		assert.Equal(t, 0, code, c)
		assert.Contains(t, out, "Usage: autoq "+c, c)
	}
}

func TestPlanCommand(t *testing.T) {
	sens := filepath.Join("..", "..", "plan", "testdata", "stories260K_sens.json")
	out := filepath.Join(t.TempDir(), "plan.json")
	code, stdout, stderr := runCLI("plan", "--sens", sens, "--target-bits", "6", "--override", "*.o_proj=w16", "--target", "transformers", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "bits/weight")
	p, err := plan.Read(out)
	require.NoError(t, err)
	assert.LessOrEqual(t, p.AvgBits, 6.0)
	assert.Equal(t, "*.o_proj", p.Rules[0].Pattern)
	c, err := p.SchemeFor("model.layers.2.self_attn.o_proj")
	require.NoError(t, err)
	assert.True(t, c.Full)

	code, stdout, _ = runCLI("plan", "--sens", sens, "--max-kl", "0.01", "--target", "transformers", "--json")
	require.Equal(t, 0, code)
	js := decodeJSON[autoquant.PlanReport](t, stdout)
	assert.LessOrEqual(t, js.Plan.PredictedDamage, 0.01)
	assert.Len(t, js.Layers, 35)

	pre := filepath.Join(t.TempDir(), "preset.json")
	code, _, stderr = runCLI("plan", "--preset", "w4g32a", "--out", pre)
	require.Equal(t, 0, code, stderr)
	p, err = plan.Read(pre)
	require.NoError(t, err)
	assert.Equal(t, "preset", p.Source)

	for _, bad := range [][]string{
		{"plan", "--sens", sens, "--target-bits", "5", "--max-kl", "1"},
		{"plan", "--sens", sens},
		{"plan", "--sens", sens, "--target-bits", "5", "--override", "*.o_proj"},
		{"plan", "--sens", sens, "--target-bits", "5", "--metric", "mse"},
		{"plan", "--preset", "w5"},
	} {
		code, _, _ := runCLI(bad...)
		assert.Equal(t, 2, code, "%v", bad)
	}
	code, _, stderr = runCLI("plan", "--sens", sens, "--target-bits", "3")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "cheapest possible plan")
	// TensorRT loads only w16 and int8 with static activations.
	code, stdout, stderr = runCLI("plan", "--sens", sens, "--target-bits", "9", "--target", "tensorrt", "--json")
	require.Equal(t, 0, code, stderr)
	require.NoError(t, json.Unmarshal([]byte(stdout), &js))
	for _, l := range js.Layers {
		assert.Contains(t, []string{"w16", "w8ca8s"}, l.Scheme, l.Layer)
	}
}

// TestExportAndVerifyGate exports a passing (int8) and a failing (int4 per tensor)
// candidate of the same model and checks the gate's exit codes and JSON report.
func TestExportAndVerifyGate(t *testing.T) {
	modelDir, data := aqFixture(t)
	dir := t.TempDir()
	for _, sc := range []string{"w8", "w4t"} {
		pf := filepath.Join(dir, sc+".json")
		code, _, stderr := runCLI("plan", "--uniform", sc, "--out", pf)
		require.Equal(t, 0, code, stderr)
		code, stdout, stderr := runCLI("export", "--model", modelDir, "--plan", pf, "--data", data, "--seq-len", "64",
			"--calib-tokens", "512", "--sens-tokens", "64", "--rounding", "rtn", "--target", "transformers", "--out", filepath.Join(dir, sc))
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "exported 28 of 28")
		ld, err := export.Read(filepath.Join(dir, sc))
		require.NoError(t, err)
		assert.Len(t, ld.Layers, 28)
	}
	js := filepath.Join(dir, "pass.json")
	code, stdout, stderr := runCLI("verify", "--baseline", modelDir, "--candidate", filepath.Join(dir, "w8"), "--data", data,
		"--seq-len", "64", "--max-ppl-increase", "1%", "--json", js)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "PASS")
	var rep autoquant.VerifyReport
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.True(t, rep.Pass)
	assert.Less(t, rep.PPLIncrease, 0.01)

	js = filepath.Join(dir, "fail.json")
	code, stdout, stderr = runCLI("verify", "--baseline", modelDir, "--candidate", filepath.Join(dir, "w4t"), "--data", data,
		"--seq-len", "64", "--max-ppl-increase", "1%", "--json", js)
	assert.Equal(t, 1, code, stdout)
	assert.Contains(t, stdout, "FAIL")
	assert.Contains(t, stderr, "accuracy gate failed")
	b, err = os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.False(t, rep.Pass)

	// The same candidate passes a looser KL-only gate.
	code, _, stderr = runCLI("verify", "--baseline", modelDir, "--candidate", filepath.Join(dir, "w4t"), "--data", data,
		"--seq-len", "64", "--max-ppl-increase", "off", "--max-kl", "10")
	assert.Equal(t, 0, code, stderr)

	code, _, _ = runCLI("verify", "--baseline", modelDir, "--data", data)
	assert.Equal(t, 2, code)
	code, _, _ = runCLI("verify", "--baseline", modelDir, "--candidate", modelDir, "--data", data, "--max-ppl-increase", "x%")
	assert.Equal(t, 2, code)
	code, _, stderr = runCLI("verify", "--baseline", modelDir, "--candidate", filepath.Join(dir, "missing"), "--data", data)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "missing")
}

func TestSensitivityAndRunCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the end-to-end autoq run on the real model takes minutes")
	}
	modelDir, data := aqFixture(t)
	dir := t.TempDir()
	sens, png := filepath.Join(dir, "sens.json"), filepath.Join(dir, "sens.png")
	code, stdout, stderr := runCLI("sensitivity", "--model", modelDir, "--data", data, "--schemes", "w4g32a,w8,w8a8s",
		"--seq-len", "64", "--calib-tokens", "512", "--sens-tokens", "256", "--rounding", "rtn", "--out", sens, "--plot", png)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "rank")
	s, err := plan.ReadSensitivity(sens)
	require.NoError(t, err)
	assert.Len(t, s.Layers, 28)
	assert.Equal(t, []string{"w4g32a", "w8c", "w8ca8s"}, s.Schemes)
	pngBytes, err := os.ReadFile(png)
	require.NoError(t, err)
	assert.Equal(t, []byte("\x89PNG"), pngBytes[:4])

	out := filepath.Join(dir, "out")
	code, stdout, stderr = runCLI("run", "--model", modelDir, "--data", data, "--seq-len", "64", "--calib-tokens", "512",
		"--sens-tokens", "256", "--rounding", "rtn", "--schemes", "w4g32a,w8", "--target-bits", "6", "--max-ppl-increase", "5%",
		"--target", "transformers", "--out", out)
	require.Equal(t, 0, code, stderr)
	for _, stage := range []string{"[1/6] calibrate", "[2/6] sensitivity", "[3/6] plan", "[4/6] quantize", "[5/6] export", "[6/6] verify"} {
		assert.Contains(t, stderr, stage)
	}
	assert.Contains(t, stdout, "perplexity")
	assert.Contains(t, stdout, "gate          PASS")
	_, err = export.Read(out)
	require.NoError(t, err)

	// A gate nobody can pass: exit 1, the previous export stays.
	before, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
	require.NoError(t, err)
	code, _, stderr = runCLI("run", "--model", modelDir, "--data", data, "--seq-len", "64", "--calib-tokens", "512",
		"--sens-tokens", "256", "--rounding", "rtn", "--schemes", "w4g32a", "--target-bits", "4.7", "--max-ppl-increase", "0%",
		"--gate-kl", "1e-12", "--target", "transformers", "--out", out, "--force")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "left unchanged")
	after, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// TestExportWithCalibrationTable takes the static activation thresholds from a
// calibration table and writes the matching TensorRT cache.
func TestExportWithCalibrationTable(t *testing.T) {
	modelDir, _ := aqFixture(t)
	dir := t.TempDir()
	m, err := model.Load(modelDir)
	require.NoError(t, err)
	opt := calib.DefaultOptions(calib.MethodMax)
	var hs []*calib.Histogram
	var res []calib.Result
	for i, name := range m.LinearNames() {
		h := calib.NewHistogram(name)
		h.AddF32([]float32{0.5, -1, float32(i + 2)}) // absmax i+2, exactly a float
		r, err := calib.Compute(h, opt)
		require.NoError(t, err)
		hs, res = append(hs, h), append(res, r)
	}
	table, err := calib.NewTable(hs, res, opt, 1)
	require.NoError(t, err)
	tf := filepath.Join(dir, "calib.json")
	require.NoError(t, table.WriteFile(tf))
	pf := filepath.Join(dir, "plan.json")
	code, _, stderr := runCLI("plan", "--uniform", "w8a8s", "--out", pf)
	require.Equal(t, 0, code, stderr)
	out := filepath.Join(dir, "out")
	// q/k/v were given different thresholds: vLLM runs the fused qkv_proj with the largest
	// input_scale, which is not what the evaluated layers use, so it is refused.
	code, _, stderr = runCLI("export", "--model", modelDir, "--plan", pf, "--calib-table", tf, "--out", out)
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "vllm runs model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj) with its members' largest input_scale, "+
		"but their static activation thresholds differ (model.layers.0.self_attn.q_proj 2, model.layers.0.self_attn.k_proj 3)")
	code, _, stderr = runCLI("export", "--model", modelDir, "--plan", pf, "--calib-table", tf, "--target", "transformers", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "note: trt_int8_calibration.cache is keyed by module names")
	ld, err := export.Read(out)
	require.NoError(t, err)
	for _, l := range ld.Layers {
		require.NotNil(t, l.Act, l.Name)
		i := slices.Index(m.LinearNames(), l.Name)
		assert.Equal(t, float32(i+2), l.Act.Amax, l.Name)
	}
	cache, err := os.ReadFile(filepath.Join(out, autoquant.TRTCacheFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(cache)), "\n")
	assert.Equal(t, "TRT-8601-MinMaxCalibration", lines[0])
	assert.Len(t, lines, 1+28)
	assert.Contains(t, lines, fmt.Sprintf("model.layers.0.self_attn.q_proj: %08x", math.Float32bits(float32(2)/127)))

	// With a name map: one line per network tensor (q/k/v share one; their different
	// thresholds merge to the largest, reported), modules without a name left out.
	named := filepath.Join(dir, "named")
	code, _, stderr = runCLI("export", "--model", modelDir, "--plan", pf, "--calib-table", tf, "--target", "transformers",
		"--trt-names", filepath.Join("testdata", "trt_names.json"), "--trt-version", "100300", "--out", named)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "warning: 21 of 28 cache entries have no network tensor name")
	assert.Contains(t, stderr, "model.layers.0.self_attn.q_proj, model.layers.0.self_attn.k_proj, model.layers.0.self_attn.v_proj read one tensor")
	cache, err = os.ReadFile(filepath.Join(named, autoquant.TRTCacheFile))
	require.NoError(t, err)
	bits := func(amax int) string { return fmt.Sprintf("%08x", math.Float32bits(float32(amax)/127)) }
	// In the table's (forward) order; amax of linear i is i+2: q 2, k 3, v 4 -> 4; o 5;
	// gate 6, up 7 -> 7; down 8.
	assert.Equal(t, "TRT-100300-MinMaxCalibration\n"+
		"/model/layers.0/input_layernorm/Mul_1_output_0: "+bits(4)+"\n"+
		"/model/layers.0/self_attn/Reshape_7_output_0: "+bits(5)+"\n"+
		"/model/layers.0/post_attention_layernorm/Mul_1_output_0: "+bits(7)+"\n"+
		"/model/layers.0/mlp/Mul_output_0: "+bits(8)+"\n", string(cache))
}

// verify takes autoq's own quantized layout as candidate: int8 per-channel passes a 1%
// gate, int4 per-channel (no groups) fails it.
func TestVerifyAutoqQuantizedLayout(t *testing.T) {
	bin, data := testutil.Stories(t)
	dir := t.TempDir()
	w8, w4 := filepath.Join(dir, "w8"), filepath.Join(dir, "w4")
	code, _, stderr := runCLI("quantize", bin, "--bits", "8", "--out", w8)
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI("quantize", bin, "--bits", "4", "--out", w4)
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := runCLI("verify", "--baseline", bin, "--candidate", w8, "--data", data, "--tokens", "2048", "--seq-len", "128")
	assert.Equal(t, 0, code, "w8 passes: %s %s", stdout, stderr)
	code, stdout, stderr = runCLI("verify", "--baseline", bin, "--candidate", w4, "--data", data, "--tokens", "2048", "--seq-len", "128")
	assert.Equal(t, 1, code, "w4 per-channel fails the 1%% gate: %s %s", stdout, stderr)
}

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
// the same levels and scales, read back from disk with the rest of the exported model.
func TestEvalQuantizedExportEqualsScheme(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	data := testutil.SharedData(t, "tinystories_val.txt")
	tmp := t.TempDir()
	hf, planFile, dir := filepath.Join(tmp, "hf"), filepath.Join(tmp, "w8a8.json"), filepath.Join(tmp, "w8a8-export")
	for _, args := range [][]string{
		{"convert", "llama2c", bin, "--out", hf},
		{"plan", "--uniform", "w8a8", "--out", planFile},
		{"export", "--model", hf, "--plan", planFile, "--target", "any", "--out", dir, "--device", "cpu"},
	} {
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, "%v: %s", args, stderr)
	}
	code, out, stderr := runCLI("eval", "--model", bin, "--data", data, "--tokens", "1024", "--seq-len", "128",
		"--scheme", "w8a8", "--quantized", dir, "--json")
	require.Equal(t, 0, code, stderr)
	var rep autoquant.EvalReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
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
	if !hasCUDA() {
		assert.Contains(t, stderr, "running on the CPU")
		assert.Contains(t, out, "fp32")
	} else {
		assert.Contains(t, out, "fp16")
	}
}
