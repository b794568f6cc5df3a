package autoquant

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// small returns the synthetic model with a little deterministic data.
func small(t testing.TB) (*Source, *Data) {
	src := Synthetic()
	d, err := SyntheticData(src, 64, DataOptions{CalibTokens: 512, SensTokens: 256, EvalTokens: 512})
	require.NoError(t, err)
	return src, d
}

func forwardAll(t testing.TB, m *model.Model, wins [][]int) [][]float32 {
	out, err := m.Forward(wins, nil)
	require.NoError(t, err)
	return out
}

// mixedPlan exercises every export format: int4 asymmetric groups, int8 weight-only,
// W8A8 static and dynamic, and full precision.
func mixedPlan(t testing.TB) *plan.Plan {
	return &plan.Plan{Version: 1, ScaleBits: 16, Rules: []plan.Rule{
		{Pattern: "*.q_proj", Scheme: mustRecipe(t, "w8a8s")},
		{Pattern: "*.k_proj", Scheme: mustRecipe(t, "w8a8")},
		{Pattern: "*.o_proj", Scheme: quant.FullPrecision},
		{Pattern: "*.v_proj", Scheme: mustRecipe(t, "w8")},
		{Pattern: "*.mlp.*", Scheme: mustRecipe(t, "w4g32a")},
	}}
}

func calibrated(t testing.TB, src *Source, d *Data) *Quantizers {
	m, err := src.NewModel()
	require.NoError(t, err)
	amax := map[string]float32{}
	hook := func(name string, x []float32, M, K int) {
		for _, v := range x[:M*K] {
			if v < 0 {
				v = -v
			}
			amax[name] = max(amax[name], v)
		}
	}
	_, err = m.Forward(d.Calib, hook)
	require.NoError(t, err)
	return &Quantizers{Amax: amax}
}

func TestExportedModelReproducesTheEvaluatedModelExactly(t *testing.T) {
	src, d := small(t)
	qz := calibrated(t, src, d)
	cand, err := src.NewModel()
	require.NoError(t, err)
	layers, err := ApplyPlan(cand, mixedPlan(t), qz, nil)
	require.NoError(t, err)
	require.Len(t, layers, 4*6) // o_proj stays full precision
	want := forwardAll(t, cand, d.Eval)

	dir := filepath.Join(t.TempDir(), "export")
	em := ExportModel(src, cand, layers)
	assert.Contains(t, em.Ignore, "model.layers.0.self_attn.o_proj")
	assert.Contains(t, em.Ignore, "lm_head")
	require.NoError(t, exportWrite(dir, em))
	got, ld, err := LoadExported(dir)
	require.NoError(t, err)
	require.Len(t, ld.Layers, len(layers))
	byName := map[string]*Layer{}
	for _, l := range layers {
		byName[l.Name] = l
	}
	for _, l := range ld.Layers {
		orig := byName[l.Name]
		require.NotNil(t, orig, l.Name)
		// Bit for bit: the exported weights dequantize to the evaluated weights.
		assert.Equal(t, quant.Dequantize(orig.Q), quant.Dequantize(l.Q), l.Name)
		assert.Equal(t, orig.Act, l.Act, l.Name)
	}
	// And the whole model gives the same logits, activation quantization included.
	assert.Equal(t, want, forwardAll(t, got, d.Eval))
}

func TestSensitivityEqualsDirectEvaluation(t *testing.T) {
	src, d := small(t)
	qz := calibrated(t, src, d)
	m, err := src.NewModel()
	require.NoError(t, err)
	before := forwardAll(t, m, d.Sens)
	schemes := []quant.Recipe{mustRecipe(t, "w4g32a"), mustRecipe(t, "w8"), mustRecipe(t, "w8a8s")}
	layers := []string{"model.layers.0.self_attn.q_proj", "model.layers.2.mlp.down_proj"}
	s, err := MeasureSensitivity(m, d.Sens, SensOptions{Schemes: schemes, Quantizers: qz, Layers: layers, Batch: 3})
	require.NoError(t, err)
	require.Len(t, s.Layers, 2)
	// The model is left as it was.
	assert.Equal(t, before, forwardAll(t, m, d.Sens))

	// Independent check of one entry: plug the quantized layer and evaluate with package
	// eval against a separate full-precision model.
	ref, err := src.NewModel()
	require.NoError(t, err)
	for _, name := range layers {
		for _, c := range schemes {
			cand, err := src.NewModel()
			require.NoError(t, err)
			l, err := qz.Quantize(cand, name, c)
			require.NoError(t, err)
			require.NoError(t, cand.SetLinear(name, l.Linear))
			r, err := eval.Evaluate(cand, ref, newWindows(d.Sens), eval.Options{Vocab: src.Cfg.Vocab, BOS: 1, Batch: 2})
			require.NoError(t, err)
			var got plan.Damage
			for _, ls := range s.Layers {
				if ls.Name == name {
					got = ls.Damage[c.String()]
				}
			}
			assert.InDelta(t, r.KL, got.KL, 1e-12, "%s %s", name, c)
			assert.InDelta(t, r.Perplexity, got.PPL, 1e-9, "%s %s", name, c)
			assert.InDelta(t, r.Perplexity/r.RefPPL-1, got.PPLDelta, 1e-12)
		}
	}
	// 8-bit weights damage less than 4-bit ones.
	for _, ls := range s.Layers {
		assert.Less(t, ls.Damage["w8c"].KL, ls.Damage["w4g32a"].KL, ls.Name)
	}
}

func TestVerifyGate(t *testing.T) {
	src, d := small(t)
	base, err := src.NewModel()
	require.NoError(t, err)
	same, err := src.NewModel()
	require.NoError(t, err)
	r, err := CompareModels(base, same, d.Eval, 1, 4, Gate{MaxPPLIncrease: 0.01})
	require.NoError(t, err)
	assert.True(t, r.Pass)
	assert.Equal(t, 0.0, r.PPLIncrease)
	assert.Equal(t, 1.0, r.Top1)
	assert.InDelta(t, 0, r.KL, 1e-12)

	// Per-tensor int4 everywhere is far outside 1%.
	bad, err := src.NewModel()
	require.NoError(t, err)
	_, err = ApplyPlan(bad, plan.Uniform(mustRecipe(t, "w4t"), 16), &Quantizers{}, nil)
	require.NoError(t, err)
	r, err = CompareModels(base, bad, d.Eval, 1, 4, Gate{MaxPPLIncrease: 0.01, MaxKL: 0.01})
	require.NoError(t, err)
	assert.False(t, r.Pass)
	assert.Len(t, r.Failures, 2)
	assert.Greater(t, r.PPLIncrease, 0.01)

	// The gate can be switched to KL only.
	r, err = CompareModels(base, bad, d.Eval, 1, 4, Gate{MaxPPLIncrease: -1, MaxKL: 100})
	require.NoError(t, err)
	assert.True(t, r.Pass)
}

func TestRunPublishesOnlyWhenTheGatePasses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the end-to-end pipeline run takes minutes")
	}
	src, d := small(t)
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "old.txt"), []byte("old"), 0o644))
	// A previous export (its marker): the only kind of directory a run may replace.
	require.NoError(t, os.WriteFile(filepath.Join(out, atomicfile.OutputMarker), []byte(`{"kind":"`+export.OutputKind+`","written_by":"autoq"}`), 0o644))
	opts := PipelineOptions{Src: src, Data: d, Out: out, TargetBits: 5.3, Int4Method: "rtn", Target: "transformers",
		Schemes: []quant.Recipe{mustRecipe(t, "w4g32a"), mustRecipe(t, "w8")}, Gate: Gate{MaxPPLIncrease: -1, MaxKL: 1e-12}}
	rep, err := RunPipeline(Env{}, opts)
	require.Error(t, err)
	require.NotNil(t, rep)
	assert.False(t, rep.Verify.Pass)
	assert.False(t, rep.Exported)
	b, err := os.ReadFile(filepath.Join(out, "old.txt"))
	require.NoError(t, err, "the old output is untouched")
	assert.Equal(t, "old", string(b))
	entries, _ := os.ReadDir(filepath.Dir(out))
	assert.Len(t, entries, 1, "no staging directory left behind")

	opts.Gate = Gate{MaxPPLIncrease: 0.05}
	rep, err = RunPipeline(Env{}, opts)
	require.NoError(t, err)
	assert.True(t, rep.Exported)
	assert.LessOrEqual(t, rep.AvgBits, 5.3)
	assert.Greater(t, rep.SizeBefore, 3*rep.SizeAfter)
	for _, f := range []string{"config.json", "model.safetensors", "autoq_plan.json", "autoq_sensitivity.json", "autoq_report.json", TRTCacheFile} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	assert.NoFileExists(t, filepath.Join(out, "old.txt"))
	// The published plan applies to the model and reproduces the report's assignment.
	p, err := plan.Read(filepath.Join(out, "autoq_plan.json"))
	require.NoError(t, err)
	for name, s := range rep.Layers {
		c, err := p.SchemeFor(name)
		require.NoError(t, err)
		assert.Equal(t, s, c.String())
	}
}

func TestKernelModelMatchesFakeQuantizedModel(t *testing.T) {
	src, d := small(t)
	cand, err := src.NewModel()
	require.NoError(t, err)
	p := &plan.Plan{Version: 1, Rules: []plan.Rule{
		{Pattern: "*.k_proj", Scheme: mustRecipe(t, "w8a8")},
		{Pattern: "*.mlp.*", Scheme: mustRecipe(t, "w4g32a")},
	}}
	layers, err := ApplyPlan(cand, p, &Quantizers{}, nil)
	require.NoError(t, err)
	want := forwardAll(t, cand, d.Eval[:2])
	n, err := KernelModel(cand, layers)
	require.NoError(t, err)
	assert.Equal(t, 4*4, n)
	got := forwardAll(t, cand, d.Eval[:2])
	for i := range want {
		st := quant.Compare(want[i], got[i])
		assert.Greater(t, st.SQNRdB, 60.0, "window %d: %v", i, st)
	}
	ms, err := MedianForwardMs(cand, d.Eval[:1], 1, 3)
	require.NoError(t, err)
	assert.Greater(t, ms, 0.0)
}
