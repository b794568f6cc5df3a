package autoquant

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wideGGUFModel is a random Llama whose layers are all 256 wide (every block format fits),
// with calibration windows and the layers' Hessians.
func wideGGUFModel(t *testing.T) (*model.Model, map[string]*gptq.Hessian) {
	cfg := checkpoint.LlamaConfig{Dim: 256, HiddenDim: 512, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 64, MaxSeq: 64,
		RopeTheta: 10000, NormEps: 1e-5, Architecture: "LlamaForCausalLM"}
	m, err := model.New(cfg, llamatest.Tensors(cfg, 5, llamatest.RandomNorms))
	require.NoError(t, err)
	r := testutil.Rand(6)
	wins := make([][]int, 8)
	for i := range wins {
		for len(wins[i]) < 48 {
			wins[i] = append(wins[i], r.IntN(cfg.Vocab))
		}
	}
	hs, err := collect.Hessians(m, wins, 4, nil)
	require.NoError(t, err)
	return m, hs
}

// Legacy block formats store autoq's own levels: the decoded symmetric weights are
// quant.Dequantize of the levels bit for bit (the F16 scale was rounded before the levels
// were chosen); asymmetric ones (Q4_1, Q5_1: a min F16(-z*d) instead of a zero point) are
// within half an F16 ulp of z*d plus float rounding, as gguf.RoundScales states.
func TestBlockLayersStoreAutoqLevels(t *testing.T) {
	m, _ := wideGGUFModel(t)
	name := "model.layers.0.mlp.gate_proj"
	qz := &Quantizers{}
	for _, rs := range []string{"q8_0", "q4_0", "q5_0", "q4_1", "q5_1"} {
		c := mustRecipe(t, rs)
		l, err := qz.Quantize(m, name, c)
		require.NoError(t, err, rs)
		require.NotNil(t, l.GGUF)
		assert.Nil(t, l.Q)
		// autoq's levels for the same scheme, F16 scales.
		own, err := (&Quantizers{ScaleDType: tensor.F16}).Quantize(m, name, quant.Recipe{Weight: c.Weight})
		require.NoError(t, err)
		want := quant.Dequantize(own.Q)
		got, err := l.GGUF.Dequantize()
		require.NoError(t, err)
		d := l.Linear.(*model.Dense)
		assert.Equal(t, got, d.W, "%s: the model runs what the blocks decode to", rs)
		if c.Weight.Symmetric {
			assert.Equal(t, want, got, rs)
			continue
		}
		for i := range got {
			g := i / 32
			zd := float64(own.Q.Zeros[g]) * float64(own.Q.Scales[g])
			bound := zd*math.Pow(2, -11) + math.Abs(float64(want[i]))*math.Pow(2, -23) + 1e-30
			require.LessOrEqual(t, math.Abs(float64(got[i]-want[i])), bound, "%s element %d", rs, i)
		}
	}
}

// The k-quants: the grid chosen first (weighted by diag H), then GPTQ onto it gives a
// lower output error e^T H e than round-to-nearest on the same grid and than llama.cpp's
// own quantizer (+ref), for Q4_K and Q6_K; +ref is gguf.RefQuantize byte for byte.
func TestKQuantGPTQBeatsRTNAndLlamaCpp(t *testing.T) {
	m, hs := wideGGUFModel(t)
	name := "model.layers.0.mlp.down_proj"
	w := m.Weight(name + ".weight")
	rows, cols := w.Shape[0], w.Shape[1]
	gq := &Quantizers{LowBit: GPTQ(hs, BestGPTQ), Hessians: hs}
	for _, typ := range []string{"q4_k", "q6_k"} {
		errOf := func(qz *Quantizers, rs string) float64 {
			l, err := qz.Quantize(m, name, mustRecipe(t, rs))
			require.NoError(t, err, rs)
			return gptq.OutputError(w.F32(), l.Linear.(*model.Dense).W, rows, cols, hs[name])
		}
		ours, rtn, ref := errOf(gq, typ), errOf(gq, typ+"+rtn"), errOf(&Quantizers{}, typ+"+ref")
		t.Logf("%s output error: GPTQ on the grid %.4g, RTN on the grid %.4g, llama.cpp %.4g", typ, ours, rtn, ref)
		assert.Less(t, ours, rtn, typ)
		assert.Less(t, ours, ref, typ)

		l, err := (&Quantizers{}).Quantize(m, name, mustRecipe(t, typ+"+ref"))
		require.NoError(t, err)
		want, err := gguf.RefQuantize(name, ggufType(l.Recipe.Block), w.F32(), rows, cols, nil)
		require.NoError(t, err)
		assert.Equal(t, want, l.GGUF)
	}
	_, err := (&Quantizers{}).Quantize(m, name, mustRecipe(t, "q4_k+gptq"))
	assert.ErrorContains(t, err, "GPTQ needs calibration data")
}

func TestBlockLayerRefusesWidth(t *testing.T) {
	cfg := checkpoint.LlamaConfig{Dim: 64, HiddenDim: 96, Layers: 1, Heads: 2, KVHeads: 2, Vocab: 32, MaxSeq: 16, RopeTheta: 10000, NormEps: 1e-5}
	m, err := model.New(cfg, llamatest.Tensors(cfg, 1, llamatest.RandomNorms))
	require.NoError(t, err)
	_, err = (&Quantizers{}).Quantize(m, "model.layers.0.mlp.gate_proj", mustRecipe(t, "q4_k"))
	assert.ErrorContains(t, err, "quantize model.layers.0.mlp.gate_proj as q4_k: input width 64 is not a multiple of q4_k's block size 256")
}

// What the gate verifies is what is written: the model read back from the GGUF file runs
// exactly the weights the quantized model ran (full precision kept F32 here), logits bit
// for bit, for a mixed plan on stories260K.
func TestGGUFExportReadsBackToTheEvaluatedModel(t *testing.T) {
	src, err := OpenSource(testutil.SharedData(t, "stories260K.bin"), "")
	require.NoError(t, err)
	m, err := src.NewModel()
	require.NoError(t, err)
	p := &plan.Plan{Version: 1, ScaleBits: 16, Rules: []plan.Rule{
		{Pattern: "*.down_proj", Scheme: quant.FullPrecision},
		{Pattern: "*.q_proj", Scheme: mustRecipe(t, "q4_1")},
		{Pattern: "*.k_proj", Scheme: mustRecipe(t, "q5_0")},
		{Pattern: "*.v_proj", Scheme: mustRecipe(t, "q8_0")},
		{Pattern: "*.o_proj", Scheme: mustRecipe(t, "q4_0+ref")},
		{Pattern: "*", Scheme: mustRecipe(t, "q5_1")},
	}}
	ql, err := ApplyPlan(m, p, &Quantizers{}, nil)
	require.NoError(t, err)
	require.Len(t, ql, 30)
	out := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, writeGGUF(out, src, ql, gguf.F32))
	back, bits, err := LoadGGUF(out)
	require.NoError(t, err)
	wins := [][]int{{1, 40, 200, 7, 300, 22, 9, 411}, {1, 5, 6, 7}}
	a, err := m.Forward(wins, nil)
	require.NoError(t, err)
	b, err := back.Forward(wins, nil)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	// llama.cpp's accounting, by hand: per layer q 4096 x 5.0, k 2048 x 5.5, v 2048 x 8.5,
	// o 4096 x 4.5, gate/up 2 x 11008 x 6.0, down 11008 x 32 (F32).
	perLayer := 4096*5.0 + 2048*5.5 + 2048*8.5 + 4096*4.5 + 2*11008*6.0 + 11008*32
	assert.InDelta(t, perLayer/45312, bits.Linear, 1e-12)
	assert.Equal(t, map[string]int{"Q4_1": 5, "Q5_0": 5, "Q8_0": 5, "Q4_0": 5, "Q5_1": 10, "F32": 5}, bits.Types)
}

// The planner costs block formats with llama.cpp's bits per weight and offers each layer
// only what the gguf target stores at its width: stories260K's 172-wide down_proj stays
// w16, so its cheapest plan is (55040*16 + 171520*4.5)/226560 = 7.294 bits per weight.
func TestGGUFPlannerAccounting(t *testing.T) {
	cfg := checkpoint.LlamaConfig{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512}
	layers := configLayers(cfg)
	et, err := openTarget(GGUFTarget, tensor.F16, layers)
	require.NoError(t, err)
	s := &plan.Sensitivity{}
	for _, l := range layers {
		ls := plan.LayerSensitivity{Name: l.Name, Rows: l.Rows, Cols: l.Cols, Damage: map[string]plan.Damage{}}
		if l.Cols%32 == 0 {
			ls.Damage["q4_0"] = plan.Damage{KL: 0.01}
			ls.Damage["q8_0"] = plan.Damage{KL: 0.001}
		}
		s.Layers = append(s.Layers, ls)
	}
	min := (55040*16 + 171520*4.5) / 226560
	_, res, err := solveFor(et, s, plan.Options{TargetBits: min + 1e-9})
	require.NoError(t, err)
	assert.InDelta(t, min, res.AvgBits, 1e-9)
	for i, l := range layers {
		want := "q4_0"
		if l.Cols == 172 {
			want = "w16"
		}
		assert.Equal(t, want, res.Choices[i].String(), l.Name)
	}
	_, _, err = solveFor(et, s, plan.Options{TargetBits: 5.3})
	var be *plan.BudgetError
	require.True(t, errors.As(err, &be), "%v", err)
	assert.InDelta(t, min, be.Cheapest, 1e-9)
	assert.ErrorContains(t, err, "gguf can load 5 of 35 layers only in full precision")
	assert.ErrorContains(t, err, "model.layers.0.mlp.down_proj")
}
