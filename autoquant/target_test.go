package autoquant

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synthDir writes src as a Hugging Face directory and its data as .jsonl token ids.
func synthDir(t *testing.T, src *Source) (model, data string) {
	t.Helper()
	dir := t.TempDir()
	model = filepath.Join(dir, "model")
	require.NoError(t, checkpoint.WriteHF(model, &src.Cfg, src.Tensors))
	d, err := SyntheticData(src, 64, DataOptions{CalibTokens: 512, SensTokens: 128, EvalTokens: 256})
	require.NoError(t, err)
	var b bytes.Buffer
	for _, w := range append(append(d.Calib, d.Sens...), d.Eval...) {
		j, _ := json.Marshal(w)
		b.Write(append(j, '\n'))
	}
	data = filepath.Join(dir, "data.jsonl")
	require.NoError(t, os.WriteFile(data, b.Bytes(), 0o644))
	return model, data
}

// planOf writes a plan file of rules "GLOB=SCHEME".
func planOf(t *testing.T, rules ...string) string {
	t.Helper()
	p := &plan.Plan{Version: 1, Source: "test", ScaleBits: 16}
	for _, r := range rules {
		rule, err := plan.ParseOverride(r)
		require.NoError(t, err)
		p.Rules = append(p.Rules, rule)
	}
	f := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, plan.Write(f, p))
	return f
}

// checkReadBack reads the export at out and checks it against what autoq evaluates for
// the plan: the same quantizers on a fresh model (deterministic), each layer dequantized
// straight from the stored tensors (compressed-tensors' rule) equal to the evaluated
// weights bit for bit, and scales stored in dtype sd.
func checkReadBack(t *testing.T, out string, f ExportOptions, sd tensor.DType) {
	t.Helper()
	src, err := OpenSource(f.Model, f.Tokenizer)
	require.NoError(t, err)
	m, err := src.NewModel()
	require.NoError(t, err)
	p, err := plan.Read(f.Plan)
	require.NoError(t, err)
	choices, err := p.Resolve(Layers(m))
	require.NoError(t, err)
	qz := &Quantizers{ScaleDType: sd}
	if f.Data != "" {
		d, err := loadData(f.Data, src.Tok, src.Cfg.Vocab, f.dataOptions(), dataNeed{})
		require.NoError(t, err)
		qz, err = f.quantizers(Env{}, src, d, choices)
		require.NoError(t, err)
		qz.ScaleDType = sd
	}
	want, err := ApplyPlan(m, p, qz, nil)
	require.NoError(t, err)
	ld, err := export.Read(out)
	require.NoError(t, err)
	require.Len(t, ld.Layers, len(want))
	for _, l := range want {
		got, err := ld.DequantizeStored(l.Name)
		require.NoError(t, err)
		require.Equal(t, quant.Dequantize(l.Q), got, "%s dequantizes to the evaluated weights", l.Name)
		if l.Act == nil {
			raw, err := rawScaleDType(out, l.Name)
			require.NoError(t, err)
			assert.Equal(t, sd, raw, "%s scale dtype", l.Name)
		}
	}
}

func rawScaleDType(dir, layer string) (tensor.DType, error) {
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return 0, err
	}
	defer ck.Close()
	info, ok := ck.Info(layer + ".weight_scale")
	if !ok {
		return 0, os.ErrNotExist
	}
	return info.DType, nil
}

func exportOpts(model, data, planFile, target string) ExportOptions {
	return ExportOptions{Input: Input{Model: model, Data: data, SeqLen: 64, CalibTokens: 512, CalibMethod: "max", Int4: "rtn", Batch: 8},
		Plan: planFile, Target: target, Out: filepath.Join(os.TempDir(), "unused")}
}

// The target rules through `autoq export` on the synthetic model (F32, dim 64, k/v 32,
// MLP 192): what each target loads is written and reads back to the evaluated weights;
// what it cannot load is refused naming the layer, the scheme and the rule.
func TestExportByTarget(t *testing.T) {
	model, data := synthDir(t, Synthetic())
	splitQKV := []string{"*.q_proj=w4g32", "*.k_proj=w8", "*.v_proj=w4g16a", "*.mlp.*=w4g32"}
	cases := []struct {
		name, target string
		rules        []string
		data         bool
		scale        string
		refusal      []string // fragments of the error; none: the export is written
		warnings     []string // fragments of the log
	}{
		{name: "vllm int4 symmetric: Exllama in F16", target: "vllm", rules: []string{"*=w4g32"}},
		{name: "vllm mixed consistent groups", target: "vllm", rules: []string{"*.[qkv]_proj=w8", "*.o_proj=w16", "*.mlp.*=w4g32"}},
		{name: "vllm W8A8 static", target: "vllm", rules: []string{"*=w8a8s"}, data: true},
		{name: "vllm int4 with zero points", target: "vllm", rules: []string{"*=w4g32a"}, refusal: []string{
			"(N = 0, 1, 2, 3)",
			"vllm cannot load model.layers.N.self_attn.qkv_proj (q_proj, k_proj, v_proj) as w4g32a: Marlin: input features 64 are not a multiple of 128",
			"Exllama: 4-bit weights with zero points are not taken (widths none)"}},
		{name: "vllm per-tensor weight-only", target: "vllm", rules: []string{"*=w8t"}, refusal: []string{
			"as w8t: Marlin: per-tensor weights are not taken"}},
		{name: "vllm asymmetric W8A8", target: "vllm", rules: []string{"*=w8aa8s"}, refusal: []string{
			"as w8caa8s: CUTLASS int8: 8-bit weights with zero points are not taken"}},
		{name: "vllm split q/k/v", target: "vllm", rules: splitQKV, refusal: []string{
			"vllm loads model.layers.N.self_attn.qkv_proj (q_proj, k_proj, v_proj) as one layer, so its members must share one scheme, " +
				"but the plan gives model.layers.N.self_attn.q_proj w4g32, model.layers.N.self_attn.k_proj w8c, model.layers.N.self_attn.v_proj w4g16a"}},
		{name: "vllm full precision beside quantized shards", target: "vllm", rules: []string{"*.q_proj=w16", "*=w8"}, refusal: []string{
			"but the plan gives model.layers.N.self_attn.q_proj w16, model.layers.N.self_attn.k_proj w8c"}},
		{name: "vllm BF16 serving rules out Exllama", target: "vllm", rules: []string{"*=w4g32"}, scale: "bf16", refusal: []string{
			"(served in BF16)", "Exllama: runs only with F16 activations (the model is served in BF16)"}},
		{name: "transformers loads the split plan", target: "transformers", rules: append([]string{"*.o_proj=w8t"}, splitQKV...)},
		{name: "any writes it with warnings", target: "any", rules: splitQKV, warnings: []string{
			"warning: vllm loads model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj) as one layer",
			"warning: vllm loads model.layers.3.self_attn.qkv_proj (q_proj, k_proj, v_proj) as one layer"}},
		{name: "tensorrt W8A8 static", target: "tensorrt", rules: []string{"*=w8a8s"}, data: true},
		{name: "tensorrt weight-only", target: "tensorrt", rules: []string{"*=w8"}, refusal: []string{
			"no tensorrt kernel takes weight-only quantized layers"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ""
			if c.data {
				d = data
			}
			f := exportOpts(model, d, planOf(t, c.rules...), c.target)
			f.ScaleDType = c.scale
			f.Out = filepath.Join(t.TempDir(), "out")
			var log bytes.Buffer
			rep, err := Export(Env{Log: &log}, f)
			if c.refusal != nil {
				require.Error(t, err)
				for _, r := range c.refusal {
					assert.Contains(t, err.Error(), r)
				}
				assert.NoDirExists(t, f.Out, "nothing is written")
				return
			}
			require.NoError(t, err)
			for _, w := range c.warnings {
				assert.Contains(t, log.String(), w)
			}
			assert.Equal(t, c.target, rep.Target)
			assert.Equal(t, "F16", rep.ScaleDType)
			checkReadBack(t, f.Out, f, tensor.F16)
			cfg, err := os.ReadFile(filepath.Join(f.Out, "config.json"))
			require.NoError(t, err)
			assert.Contains(t, string(cfg), `"torch_dtype": "float16"`, "an F32 model is exported for F16 serving")
		})
	}

	// F32 scales are rounded on load by vLLM: refused as a usage error.
	f := exportOpts(model, "", planOf(t, "*=w8"), "vllm")
	f.ScaleDType = "f32"
	_, err := Export(Env{}, f)
	require.Error(t, err)
	assert.True(t, IsUsage(err))
	assert.Contains(t, err.Error(), "--scale-dtype f32: vllm keeps weight-only scales in the dtype the model is served in")
}

// A plan's target is the export's default.
func TestExportUsesThePlansTarget(t *testing.T) {
	model, _ := synthDir(t, Synthetic())
	p := &plan.Plan{Version: 1, Source: "auto", Target: "transformers", ScaleBits: 16,
		Rules: []plan.Rule{{Pattern: "*", Scheme: mustRecipe(t, "w4g32a")}}}
	file := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, plan.Write(file, p))
	f := exportOpts(model, "", file, "")
	f.Out = filepath.Join(t.TempDir(), "out")
	rep, err := Export(Env{}, f)
	require.NoError(t, err)
	assert.Equal(t, "transformers", rep.Target)
	f.Target, f.Force = "vllm", true
	_, err = Export(Env{}, f)
	require.ErrorContains(t, err, "the plan cannot be exported for vllm")
	assert.True(t, strings.Contains(err.Error(), "--target any writes it anyway"))
}

// The whole pipeline for vLLM on the synthetic model: schemes vLLM cannot load there are
// not measured, fused groups share one scheme, and the export passes vLLM's rules.
func TestRunForVLLM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the end-to-end pipeline run takes minutes")
	}
	src, d := small(t)
	out := filepath.Join(t.TempDir(), "out")
	var log bytes.Buffer
	rep, err := RunPipeline(Env{Log: &log}, PipelineOptions{Src: src, Data: d, Out: out, TargetBits: 5.3, Int4Method: "rtn",
		Gate: Gate{MaxPPLIncrease: 1}})
	require.NoError(t, err)
	assert.Equal(t, "vllm", rep.Target)
	assert.Contains(t, log.String(), "note: vllm loads no layer of this model as w4g32a (e.g. vllm cannot load model.layers.0.self_attn.qkv_proj")
	assert.Contains(t, log.String(), "note: vllm loads no layer of this model as w4g16a")
	p, err := plan.Read(filepath.Join(out, "autoq_plan.json"))
	require.NoError(t, err)
	assert.Equal(t, "vllm", p.Target)
	m, err := src.NewModel()
	require.NoError(t, err)
	layers := Layers(m)
	choices, err := p.Resolve(layers)
	require.NoError(t, err)
	et, err := openTarget("vllm", tensor.F16, layers)
	require.NoError(t, err)
	problems, err := et.t.CheckPlan(et.layers, choices, tensor.F16)
	require.NoError(t, err)
	assert.Empty(t, problems)
	var quantized int
	for _, c := range choices {
		if !c.Full {
			quantized++
		}
	}
	assert.Greater(t, quantized, len(choices)/2, "most layers are quantized")
	ld, err := export.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "float16", ld.Config["torch_dtype"])
}

// stories260K's widths (64, 32, 172): vLLM loads no quantized down_proj (172 inputs: not
// a multiple of Marlin's 128 nor of Exllama's 32), so 5.3 and 6 bits are out of reach
// and the refusal says why; 8 bits is a loadable plan.
func TestRealModelWidthsForVLLM(t *testing.T) {
	sens := filepath.Join("..", "plan", "testdata", "stories260K_sens.json")
	for _, bits := range []float64{5.3, 6} {
		_, err := Plan(Env{}, PlanOptions{Sens: sens, TargetBits: bits, Metric: "kl", Target: "vllm"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is below the cheapest possible plan (7.294 with these candidates, overrides and target rules)")
		assert.Contains(t, err.Error(), "vllm can load 5 of 20 layers only in full precision (the model served in F16): "+
			"model.layers.0.mlp.down_proj, model.layers.1.mlp.down_proj, model.layers.2.mlp.down_proj, 2 more")
		assert.Contains(t, err.Error(), "Exllama: row length 172 is not a multiple of 32")
	}
	rep, err := Plan(Env{}, PlanOptions{Sens: sens, TargetBits: 8, Metric: "kl", Target: "vllm"})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		byName := map[string]string{}
		for _, r := range rep.Layers {
			byName[r.Layer] = r.Scheme
		}
		p := "model.layers." + string(rune('0'+i)) + "."
		assert.Equal(t, byName[p+"self_attn.q_proj"], byName[p+"self_attn.k_proj"])
		assert.Equal(t, byName[p+"self_attn.q_proj"], byName[p+"self_attn.v_proj"])
		assert.Equal(t, byName[p+"mlp.gate_proj"], byName[p+"mlp.up_proj"])
		assert.Equal(t, "w16", byName[p+"mlp.down_proj"])
	}
	// transformers fuses nothing and loads every scheme: the plan of before.
	_, err = Plan(Env{}, PlanOptions{Sens: sens, TargetBits: 5.3, Metric: "kl", Target: "transformers"})
	require.NoError(t, err)
}
