package autoquant

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const normName = "model.layers.0.input_layernorm.weight"

// denseTensor returns the export's dense tensor name, or nil.
func denseTensor(ld *export.Loaded, name string) *tensor.Tensor {
	for _, nt := range ld.Dense {
		if nt.Name == name {
			return nt.T
		}
	}
	return nil
}

// The rescaled source is the same model in full precision, and its export carries the
// rescaled norms (ExportModel copies the source's tensors).
func TestScaleSourceIsEquivalentAndExportsRescaledNorms(t *testing.T) {
	src, d := small(t)
	ss, scales, err := ScaleSource(src, d.Calib, 4, mustRecipe(t, "w4g32a"), BestGPTQ)
	require.NoError(t, err)
	var scaled int
	for _, sc := range scales {
		if sc.Alpha > 0 {
			scaled++
		}
	}
	require.Positive(t, scaled, "no group was scaled: the test would be vacuous")
	orig, err := src.NewModel()
	require.NoError(t, err)
	resc, err := ss.NewModel()
	require.NoError(t, err)
	a, b := forwardAll(t, orig, d.Eval[:2]), forwardAll(t, resc, d.Eval[:2])
	var diff, mx float64
	for i := range a {
		for j := range a[i] {
			diff = math.Max(diff, math.Abs(float64(a[i][j]-b[i][j])))
			mx = math.Max(mx, math.Abs(float64(a[i][j])))
		}
	}
	t.Logf("%d of %d groups scaled; max |logit diff| / (1 + max |logit|) = %.3g", scaled, len(scales), diff/(1+mx))
	assert.Less(t, diff/(1+mx), 1e-5)
	require.NotEqual(t, src.Tensor(normName).ToF32(), ss.Tensor(normName).ToF32())

	cand, err := ss.NewModel()
	require.NoError(t, err)
	layers, err := ApplyPlan(cand, plan.Uniform(mustRecipe(t, "w4g32a"), 16), &Quantizers{}, nil)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, export.Write(dir, ExportModel(ss, cand, layers), export.Options{ScaleDType: tensor.F16}))
	ld, err := export.Read(dir)
	require.NoError(t, err)
	got := denseTensor(ld, normName)
	require.NotNil(t, got)
	assert.Equal(t, ss.Tensor(normName).ToF32(), got.ToF32())
}

func TestRunWithAWQ(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the end-to-end pipeline run takes minutes")
	}
	src, d := small(t)
	out := filepath.Join(t.TempDir(), "out")
	rep, err := RunPipeline(Env{}, PipelineOptions{Src: src, Data: d, Out: out, TargetBits: 5.3, AWQ: true, Target: "transformers",
		Schemes: []quant.Recipe{mustRecipe(t, "w8"), mustRecipe(t, "w4g32a")}, Gate: Gate{MaxPPLIncrease: 0.05}})
	require.NoError(t, err)
	assert.True(t, rep.Exported)
	ld, err := export.Read(out)
	require.NoError(t, err)
	assert.NotEqual(t, src.Tensor(normName).ToF32(), denseTensor(ld, normName).ToF32(), "the export has the rescaled norms")
	// Verify compared against the original model: its perplexity is the original's.
	orig, err := src.NewModel()
	require.NoError(t, err)
	v, err := CompareModels(orig, orig, d.Eval, 1, 8, Gate{MaxPPLIncrease: 1})
	require.NoError(t, err)
	assert.Equal(t, v.BaselinePPL, rep.Verify.BaselinePPL)
	_, _, err = ScaleSource(src, d.Calib, 4, mustRecipe(t, "w8"), BestGPTQ)
	assert.ErrorContains(t, err, "int4")
}
