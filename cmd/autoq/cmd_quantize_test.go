package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/autoquant"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func quantizeJSON(t *testing.T, args ...string) (*autoquant.QuantizeReport, string) {
	t.Helper()
	code, stdout, stderr := runCLI(append([]string{"quantize", "--json"}, args...)...)
	require.Equal(t, 0, code, stderr)
	rep := decodeJSON[autoquant.QuantizeReport](t, stdout)
	return &rep, stderr
}

// checkAgainstFile reads an output checkpoint back and checks, independently of the
// report, that every quantized weight dequantizes to within half a quantization step of
// the original (max search: no clipping) and that untouched tensors are bit-identical.
// Only for symmetric max-search outputs of F32 checkpoints.
func checkAgainstFile(t *testing.T, srcDir, outDir string, wantQuantized int) {
	t.Helper()
	src := testutil.Open(t, safetensors.OpenCheckpoint, srcDir)
	out := testutil.Open(t, safetensors.OpenCheckpoint, outDir)
	qs, _, err := quantfile.ReadQuantized(out)
	require.NoError(t, err)
	require.Len(t, qs, wantQuantized)
	for _, n := range src.Names() {
		orig, err := src.Tensor(n)
		require.NoError(t, err)
		q, ok := qs[n]
		if !ok {
			copied, err := out.Tensor(n)
			require.NoError(t, err, n)
			assert.Equal(t, orig.Data, copied.Data, n)
			continue
		}
		ref := orig.F32()
		deq := quant.Dequantize(q)
		require.Len(t, deq, len(ref))
		for i, v := range ref {
			scale, _ := q.ScaleAt(i/q.Cols, i%q.Cols)
			// Half a step, plus float32 rounding of the scale (amplified by the level, up to
			// 2^(b-1)) and of the product: each below |v| * 2^-24.
			bound := float64(scale)/2 + math.Abs(float64(v))*math.Pow(2, -22)
			if e := math.Abs(float64(deq[i] - v)); e > bound {
				t.Fatalf("%s element %d: error %g exceeds half a step %g", n, i, e, bound)
			}
		}
	}
	_, err = os.Stat(filepath.Join(outDir, "config.json"))
	assert.NoError(t, err, "config.json travels with the weights")
}

func TestQuantizeRealInt8PerChannel(t *testing.T) {
	dir := convertReal(t)
	out := filepath.Join(t.TempDir(), "q8")
	rep, stderr := quantizeJSON(t, dir, "--bits", "8", "--granularity", "channel", "--out", out)
	assert.Contains(t, stderr, expectedDeviceLine())
	assert.Equal(t, 35, rep.Totals.Quantized, "7 projections x 5 layers; embedding and norms kept")
	for _, r := range rep.Tensors {
		assert.Greater(t, float64(r.SQNRdB), 30.0, r.Name)
		assert.Greater(t, float64(r.Cosine), 0.999, r.Name)
		assert.InDelta(t, 8+32.0/float64(r.Shape[1]), r.BitsPerWeight, 1e-9, r.Name)
	}
	assert.Contains(t, rep.Kept, "model.embed_tokens.weight")
	assert.Contains(t, rep.Kept, "model.norm.weight")
	checkAgainstFile(t, dir, out, 35)
}

func TestQuantizeRealInt4Group32(t *testing.T) {
	dir := convertReal(t)
	out := filepath.Join(t.TempDir(), "q4")
	rep, stderr := quantizeJSON(t, dir, "--bits", "4", "--granularity", "group", "--group-size", "32", "--out", out)
	// down_proj reads the 172-wide MLP hidden state, which 32 does not divide: 172 = 4 x 43.
	require.Len(t, rep.Refitted, 5)
	assert.Equal(t, "model.layers.0.mlp.down_proj.weight (w4g43)", rep.Refitted[0])
	assert.Contains(t, stderr, "use the next divisor")
	assert.Equal(t, 35, rep.Totals.Quantized)
	for _, r := range rep.Tensors {
		assert.Greater(t, float64(r.SQNRdB), 15.0, r.Name)
		assert.Less(t, float64(r.SQNRdB), 30.0, "int4 cannot be as good as int8: %s", r.Name)
	}
	checkAgainstFile(t, dir, out, 35)

	// The error report agrees with a recomputation from the written file.
	o := testutil.Open(t, safetensors.OpenCheckpoint, out)
	qs, _, err := quantfile.ReadQuantized(o)
	require.NoError(t, err)
	src := testutil.Open(t, safetensors.OpenCheckpoint, dir)
	for _, r := range rep.Tensors {
		w, err := src.Tensor(r.Name)
		require.NoError(t, err)
		st := quant.Compare(w.F32(), quant.Dequantize(qs[r.Name]))
		assert.InDelta(t, st.SQNRdB, float64(r.SQNRdB), 1e-9, r.Name)
	}
}

func TestQuantizeSearchesAndAsym(t *testing.T) {
	dir := convertReal(t)
	base, _ := quantizeJSON(t, dir, "--bits", "4", "--granularity", "channel")
	mse, _ := quantizeJSON(t, dir, "--bits", "4", "--granularity", "channel", "--search", "mse")
	asym, _ := quantizeJSON(t, dir, "--bits", "4", "--granularity", "channel", "--asym")
	pct, _ := quantizeJSON(t, dir, "--bits", "4", "--granularity", "channel", "--search", "percentile", "--percentile", "99")
	assert.Equal(t, 99.0, pct.Percentile)
	// MSE search minimises the reconstruction error, so it is never worse than max.
	for i := range base.Tensors {
		assert.GreaterOrEqual(t, float64(mse.Tensors[i].SQNRdB), float64(base.Tensors[i].SQNRdB)-1e-9, base.Tensors[i].Name)
	}
	assert.Greater(t, float64(mse.Totals.SQNRdB), float64(base.Totals.SQNRdB))
	assert.Equal(t, "w4ca", asym.Scheme)
	assert.Greater(t, asym.Totals.BitsPerWeight, base.Totals.BitsPerWeight, "zero points cost storage")
}

func TestQuantizeSyntheticDefault(t *testing.T) {
	code, stdout, stderr := runCLI("quantize")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, expectedDeviceLine())
	assert.Contains(t, stdout, "model.layers.3.mlp.down_proj.weight")
	assert.Contains(t, stdout, "28 tensors quantized")

	// Deterministic: two runs write identical files.
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		code, _, stderr := runCLI("quantize", "--bits", "4", "--granularity", "group", "--group-size", "64", "--search", "percentile", "--out", d)
		require.Equal(t, 0, code, stderr)
	}
	fa, err := os.ReadFile(filepath.Join(a, "model.safetensors"))
	require.NoError(t, err)
	fb, err := os.ReadFile(filepath.Join(b, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, fa, fb)
	cfg, err := checkpoint.ReadConfig(a)
	require.NoError(t, err)
	assert.Equal(t, autoquant.SyntheticConfig, *cfg, "the one built-in model: autoq run's")
}

func TestQuantizeSelection(t *testing.T) {
	dir := t.TempDir()
	r := testutil.Rand(1)
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), []safetensors.NamedTensor{
		{Name: "model.embed_tokens.weight", T: tensor.FromF32(testutil.Gaussian(r, 8*16, 1), 8, 16)},
		{Name: "model.layers.0.self_attn.q_proj.weight", T: tensor.FromF32(testutil.Gaussian(r, 16*16, 1), 16, 16)},
		{Name: "model.layers.0.mlp.up_proj.weight", T: tensor.FromF32(testutil.Gaussian(r, 32*16, 1), 32, 16).Convert(tensor.BF16)},
		{Name: "model.norm.weight", T: tensor.FromF32(testutil.Gaussian(r, 16, 1), 16)},
		{Name: "lm_head.weight", T: tensor.FromF32(testutil.Gaussian(r, 8*16, 1), 8, 16)},
	}, nil))
	names := func(rep *autoquant.QuantizeReport) (out []string) {
		for _, t := range rep.Tensors {
			out = append(out, t.Name)
		}
		return
	}
	rep, _ := quantizeJSON(t, dir)
	assert.Equal(t, []string{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"}, names(rep), "BF16 weights too; embeddings and lm_head kept")
	rep, _ = quantizeJSON(t, dir, "--include", "lm_head.weight", "--include", "*q_proj*")
	assert.Equal(t, []string{"model.layers.0.self_attn.q_proj.weight", "lm_head.weight"}, names(rep))
	rep, _ = quantizeJSON(t, dir, "--exclude", "*.mlp.*")
	assert.Equal(t, []string{"model.layers.0.self_attn.q_proj.weight"}, names(rep))

	code, _, stderr := runCLI("quantize", dir, "--include", "*nothing*")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `--include "*nothing*" matches no 2-D weight`)
	code, _, stderr = runCLI("quantize", dir, "--exclude", "*")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no weight selected")
}

func TestQuantizeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--bits", "2"},
		{"--bits", "9"},
		{"--sym", "--asym"},
		{"--granularity", "row"},
		{"--group-size", "64"},
		{"--granularity", "group", "--group-size", "0"},
		{"--search", "best"},
		{"--percentile", "99"},
		{"--search", "percentile", "--percentile", "101"},
		{"--include", "[x"},
		{"--device", "tpu"},
		{"--nope"},
		{"a", "b"},
	} {
		code, _, stderr := runCLI(append([]string{"quantize"}, args...)...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.NotEmpty(t, stderr, args)
	}
	code, stdout, stderr := runCLI("quantize", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout+stderr, "--granularity")
	code, _, stderr = runCLI("quantize", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "missing")
}

func TestQuantizeNaNFailsAndKeepsOldOutput(t *testing.T) {
	dir := t.TempDir()
	w := testutil.Gaussian(testutil.Rand(2), 4*8, 1)
	w[13] = float32(math.NaN())
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), []safetensors.NamedTensor{
		{Name: "a.weight", T: tensor.FromF32(testutil.Gaussian(testutil.Rand(3), 4*8, 1), 4, 8)},
		{Name: "b.weight", T: tensor.FromF32(w, 4, 8)},
	}, nil))
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "old"), []byte("keep"), 0o644))
	code, _, stderr := runCLI("quantize", dir, "--out", out, "--force")
	assert.Equal(t, 2, code, "a directory autoq did not write is never replaced")
	assert.Contains(t, stderr, "not a previous autoq quantized checkpoint")
	// A previous autoq output (its marker) may be replaced with --force: the NaN fails the
	// run before anything is replaced.
	require.NoError(t, os.WriteFile(filepath.Join(out, ".autoq-output"), []byte(`{"kind":"quantized checkpoint","written_by":"autoq"}`), 0o644))
	code, _, stderr = runCLI("quantize", dir, "--out", out, "--force")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `"b.weight"`)
	assert.Contains(t, stderr, "row 1")
	b, err := os.ReadFile(filepath.Join(out, "old"))
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))
	ents, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary directory left behind")
}

func TestQuantizeJSONHasNoInfinities(t *testing.T) {
	// An all-zero weight reconstructs exactly: SQNR is +Inf, which JSON spells null.
	dir := t.TempDir()
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), []safetensors.NamedTensor{
		{Name: "z.weight", T: tensor.New(tensor.F32, 4, 8)},
	}, nil))
	code, stdout, stderr := runCLI("quantize", dir, "--json", "--device", "cpu")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "device: cpu\n", stderr)
	rep := decodeJSON[map[string]any](t, stdout)
	tensors := rep["tensors"].([]any)
	assert.Nil(t, tensors[0].(map[string]any)["sqnr_db"])
	assert.Equal(t, 0.0, tensors[0].(map[string]any)["max_abs"])
}

func TestQuantizeShardedWithSideFiles(t *testing.T) {
	dir := t.TempDir()
	r := testutil.Rand(9)
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []safetensors.NamedTensor{
		{Name: "model.layers.0.self_attn.q_proj.weight", T: tensor.FromF32(testutil.Gaussian(r, 8*32, 1), 8, 32)},
	}, nil))
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []safetensors.NamedTensor{
		{Name: "model.layers.0.mlp.down_proj.weight", T: tensor.FromF32(testutil.Gaussian(r, 4*32, 1), 4, 32).Convert(tensor.F16)},
		{Name: "model.norm.weight", T: tensor.FromF32(testutil.Gaussian(r, 4, 1), 4)},
	}, nil))
	index := `{"weight_map":{"model.layers.0.self_attn.q_proj.weight":"model-00001-of-00002.safetensors",
	  "model.layers.0.mlp.down_proj.weight":"model-00002-of-00002.safetensors","model.norm.weight":"model-00002-of-00002.safetensors"}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, safetensors.IndexFileName), []byte(index), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["SomethingElse"]}`), 0o644))

	out := filepath.Join(t.TempDir(), "q")
	rep, _ := quantizeJSON(t, dir, "--bits", "4", "--granularity", "group", "--group-size", "16", "--out", out)
	assert.Equal(t, 2, rep.Totals.Quantized, "an unknown architecture does not stop weight-only quantization")
	tok, err := os.ReadFile(filepath.Join(out, "tokenizer.json"))
	require.NoError(t, err)
	assert.Equal(t, `{"model":{}}`, string(tok))
	cfg, err := os.ReadFile(filepath.Join(out, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, `{"architectures":["SomethingElse"]}`, string(cfg), "config.json copied byte for byte")

	o := testutil.Open(t, safetensors.OpenCheckpoint, out)
	qs, metas, err := quantfile.ReadQuantized(o)
	require.NoError(t, err)
	require.Len(t, qs, 2)
	assert.Equal(t, "F16", metas["model.layers.0.mlp.down_proj.weight"].DType)
	assert.Equal(t, 2, qs["model.layers.0.mlp.down_proj.weight"].Groups)
	norm, err := o.Tensor("model.norm.weight")
	require.NoError(t, err)
	assert.Equal(t, []int{4}, norm.Shape)
}

// expectedDeviceLine is what --device auto reports: the GPU where a cuda-tagged test binary
// finds one, else the CPU with the reason.
func expectedDeviceLine() string {
	if hasCUDA() {
		return "device: cuda:0"
	}
	return "device: cpu (no CUDA device"
}

// `autoq quantize --method gptq --search act-mse` writes exactly what the gptq packages
// compute for the same calibration windows: the CLI only wires them to the checkpoint.
func TestQuantizeGPTQMatchesLibrary(t *testing.T) {
	bin, data := testutil.Stories(t)
	tokPath := testutil.SharedData(t, "tok512.bin")
	out := filepath.Join(t.TempDir(), "q")
	rep, stderr := quantizeJSON(t, bin, "--bits", "4", "--granularity", "group", "--group-size", "32", "--asym",
		"--method", "gptq", "--search", "act-mse", "--data", data, "--tokenizer", tokPath,
		"--calib-tokens", "2048", "--seq-len", "128", "--out", out)
	assert.Contains(t, stderr, "calibration: 2048 tokens in 16 windows")
	assert.Equal(t, "gptq+act-mse", rep.Search)
	require.Len(t, rep.Tensors, 35, "every linear layer of the 5-layer model")

	// The library on the same windows.
	m, seqs := storiesCalib(t, 2048)
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
