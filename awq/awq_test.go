package awq

import (
	"math"
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The GQA mapping by hand: head dim 2, 2 query heads per kv head, 8 o_proj inputs.
func TestGroupEntryGQA(t *testing.T) {
	g := Group{In: 8, Channels: 4, HeadDim: 2, Repeat: 2}
	want := []int{0, 1, 0, 1, 2, 3, 2, 3}
	for c, e := range want {
		assert.Equal(t, e, g.Entry(c), "channel %d", c)
	}
	assert.Equal(t, []float32{1, 2, 1, 2, 3, 4, 3, 4}, g.Expand([]float32{1, 2, 3, 4}))
	assert.Equal(t, []float64{2, 3, 6, 7}, g.average([]float64{1, 2, 3, 4, 5, 6, 7, 8}))
}

func TestGroupsCoverEveryLinearOnce(t *testing.T) {
	cfg, m := tinyModel(t, 1)
	groups, err := Groups(cfg)
	require.NoError(t, err)
	seen := map[string]int{}
	for _, g := range groups {
		for _, n := range g.Layers {
			seen[n]++
		}
	}
	for _, n := range m.LinearNames() {
		assert.Equal(t, 1, seen[n], n)
	}
	assert.Len(t, seen, len(m.LinearNames()))
}

// The rescaled full-precision model computes the same logits (float32 rounding only), with
// scales spanning two decades, for F32 and for F16 norm weights.
func TestRescaledModelIsEquivalent(t *testing.T) {
	cfg := tinyConfig()
	toks := tokens(3, 3, 20, cfg.Vocab)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		ts := randomTensors(cfg, 2)
		for name, tt := range ts {
			if len(tt.Shape) == 1 && dt != tensor.F32 && name[len(name)-11:] == "norm.weight" {
				ts[name] = tt.Convert(dt)
			}
		}
		m, err := model.New(cfg, ts)
		require.NoError(t, err)
		scales := randomScales(t, cfg, 4)
		folded, applied, err := Fold(ts, scales)
		require.NoError(t, err)
		nm, err := model.New(cfg, folded)
		require.NoError(t, err)
		d := maxRelDiff(t, m, nm, toks)
		t.Logf("%s norms: max |logit diff| / (1 + max |logit|) = %.3g", dt, d)
		assert.Less(t, d, 1e-5, dt.String())
		// The weights really changed (the test is not vacuous) and kept their dtype.
		assert.NotEqual(t, ts["model.layers.0.self_attn.q_proj.weight"].F32()[0], folded["model.layers.0.self_attn.q_proj.weight"].F32()[0])
		assert.Equal(t, dt, folded["model.layers.1.input_layernorm.weight"].DType)
		// Applied norm scales are within the dtype's rounding of the requested ones.
		for i, sc := range applied {
			for e, v := range sc.S {
				assert.InEpsilon(t, scales[i].S[e], v, 2e-3)
			}
		}
	}
}

// Rescaling the real model with its searched scales keeps its logits.
func TestRescaledRealModelIsEquivalent(t *testing.T) {
	m, calib, _ := realdata.Load(t, 4*256, 256)
	hs, am := calibStats(t, m, calib, 4)
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}
	nm, _, scales, err := Model(m, hs, am, CollectQuantizer(collect.RTN, gptq.ClipNone, s, gptq.Options{}), Options{Grid: 4})
	require.NoError(t, err)
	scaled := scaledGroups(scales)
	require.Positive(t, scaled, "no group chose scaling: the equivalence check would be vacuous")
	d := maxRelDiff(t, m, nm, calib[:2])
	t.Logf("%d of %d groups scaled; max |logit diff| / (1 + max |logit|) = %.3g", scaled, len(scales), d)
	assert.Less(t, d, 1e-5)
}

// Scales of 1 (alpha = 0) change nothing: same tensors, same Hessians, same quantized
// layers bit for bit; and candidate(.., alpha 0) is all ones.
func TestAlphaZeroIsPlainQuantization(t *testing.T) {
	cfg := tinyConfig()
	ts := randomTensors(cfg, 5)
	m, err := model.New(cfg, ts)
	require.NoError(t, err)
	for _, v := range candidate([]float64{0, 0.3, 7, 1e-9}, nil, 0) {
		require.Equal(t, float32(1), v)
	}
	groups, err := Groups(cfg)
	require.NoError(t, err)
	var ones []Scales
	for _, g := range groups {
		s := candidate(make([]float64, g.Channels), nil, 0)
		ones = append(ones, Scales{Group: g, S: s})
	}
	nm, applied, err := Rescale(m, ones)
	require.NoError(t, err)
	for name, tt := range Tensors(m) {
		assert.Equal(t, tt.F32(), nm.Weight(name).F32(), name)
	}
	calib := tokens(6, 4, 24, cfg.Vocab)
	hs, err := collect.Hessians(m, calib, 2, nil)
	require.NoError(t, err)
	nhs, err := ScaleHessians(hs, applied)
	require.NoError(t, err)
	for name, h := range hs {
		assert.Equal(t, h.Sum, nhs[name].Sum, name)
	}
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}
	opt := gptq.Options{ActOrder: true}
	q0, _, err := collect.QuantizeModel(m, hs, collect.GPTQ, gptq.ClipActMSE, s, opt)
	require.NoError(t, err)
	q1, _, err := collect.QuantizeModel(nm, nhs, collect.GPTQ, gptq.ClipActMSE, s, opt)
	require.NoError(t, err)
	for name, q := range q0 {
		assert.Equal(t, quant.Dequantize(q), quant.Dequantize(q1[name]), name)
	}
}

// ScaleHessian equals the Hessian accumulated from the scaled inputs x / s.
func TestScaleHessianMatchesScaledInputs(t *testing.T) {
	const M, K = 50, 6
	r := testutil.Rand(7)
	x := testutil.Gaussian(r, M*K, 1)
	s := []float32{0.5, 2, 1, 8, 0.125, 3}
	xs := make([]float32, len(x))
	for i, v := range x {
		xs[i] = v / s[i%K]
	}
	h, _ := gptq.NewHessian(K)
	require.NoError(t, h.Add(x, M, K))
	want, _ := gptq.NewHessian(K)
	require.NoError(t, want.Add(xs, M, K))
	got, err := ScaleHessian(h, s)
	require.NoError(t, err)
	gm, wm := got.Matrix(), want.Matrix()
	for i := range wm {
		assert.InDelta(t, wm[i], gm[i], 1e-6*(1+math.Abs(wm[i])))
	}
	_, err = ScaleHessian(h, s[:3])
	assert.Error(t, err)
}

// outlierLayer is a layer whose inputs have a few channels 20x larger than the rest (the
// pattern activation-aware scaling is for).
func outlierLayer(seed uint64, rows, cols, tokens int) (w, x []float32) {
	r := testutil.Rand(seed)
	w = testutil.Gaussian(r, rows*cols, 1)
	x = testutil.Gaussian(r, tokens*cols, 1)
	for t := 0; t < tokens; t++ {
		for _, c := range []int{3, 17, 40, 41} {
			x[t*cols+c] *= 20
		}
	}
	return w, x
}

// trueOutputError is sum over tokens and outputs of ((W - Wq) x)^2 / tokens, computed
// from the inputs themselves (independent of the Hessian code).
func trueOutputError(w, wq, x []float32, rows, cols, tokens int) float64 {
	var e float64
	for t := 0; t < tokens; t++ {
		for r := 0; r < rows; r++ {
			var y float64
			for c := 0; c < cols; c++ {
				y += float64(w[r*cols+c]-wq[r*cols+c]) * float64(x[t*cols+c])
			}
			e += y * y
		}
	}
	return e / float64(tokens)
}

// On a layer with outlier input channels, scaling + round-to-nearest beats plain
// round-to-nearest in the output error measured on the activations themselves.
func TestScalingBeatsRTNOnOutliers(t *testing.T) {
	const rows, cols, ntok = 32, 64, 256
	w, x := outlierLayer(8, rows, cols, ntok)
	h, _ := gptq.NewHessian(cols)
	require.NoError(t, h.Add(x, ntok, cols))
	am := make([]float64, cols)
	for i, v := range x {
		am[i%cols] += math.Abs(float64(v)) / ntok
	}
	g := Group{Layers: []string{"l"}, Prev: "n", Norm: true, In: cols, Channels: cols, Repeat: 1}
	ts := map[string]*tensor.Tensor{"l.weight": tensor.FromF32(w, rows, cols)}
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}
	q := CollectQuantizer(collect.RTN, gptq.ClipNone, s, gptq.Options{})
	res, err := Search(ts, []Group{g}, map[string]*gptq.Hessian{"l": h}, map[string][]float64{"l": am}, q, Options{})
	require.NoError(t, err)
	sc := res[0]
	require.Greater(t, sc.Alpha, 0.0)

	plain, err := q("l", w, rows, cols, h)
	require.NoError(t, err)
	sh, err := ScaleHessian(h, sc.S)
	require.NoError(t, err)
	wqs, err := q("l", ScaleColumns(w, rows, cols, sc.S), rows, cols, sh)
	require.NoError(t, err)
	back := make([]float32, len(wqs)) // Q(W diag s) diag(1/s): the effective weights
	for i, v := range wqs {
		back[i] = v / sc.S[i%cols]
	}
	ePlain := trueOutputError(w, plain, x, rows, cols, ntok)
	eScaled := trueOutputError(w, back, x, rows, cols, ntok)
	t.Logf("alpha %.2f: output error plain RTN %.4g, scaled RTN %.4g (search: %.4g -> %.4g)", sc.Alpha, ePlain, eScaled, sc.Err0, sc.Err)
	assert.Less(t, eScaled, 0.8*ePlain)
	// The search's Hessian-based errors are the true ones.
	assert.InEpsilon(t, ePlain, sc.Err0, 1e-6)
	assert.InEpsilon(t, eScaled, sc.Err, 1e-4)
	// Outlier channels get the largest scales.
	for _, c := range []int{3, 17, 40, 41} {
		assert.Greater(t, sc.S[c], sc.S[0])
	}
}

// The search never returns scales measuring worse than none (s = 1 is a candidate), with
// and without the weight-magnitude candidates.
func TestSearchNeverWorse(t *testing.T) {
	cfg, m := tinyModel(t, 9)
	calib := tokens(10, 4, 24, cfg.Vocab)
	hs, am := calibStats(t, m, calib, 2)
	groups, err := Groups(cfg)
	require.NoError(t, err)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}
	blocks, err := CaptureBlocks(m, calib[:2], 2)
	require.NoError(t, err)
	for _, o := range []Options{{Grid: 5}, {Grid: 5, Duo: true}, {Grid: 5, Blocks: blocks}} {
		res, err := Search(Tensors(m), groups, hs, am, CollectQuantizer(collect.GPTQ, gptq.ClipNone, s, gptq.Options{}), o)
		require.NoError(t, err)
		for _, sc := range res {
			assert.LessOrEqual(t, sc.Err, sc.Err0)
			if sc.Alpha == 0 && !sc.Duo {
				assert.Equal(t, sc.Err0, sc.Err)
			}
		}
	}
}

// MeanAbs matches mean |x| recomputed from a plain hook.
func TestMeanAbs(t *testing.T) {
	cfg, m := tinyModel(t, 11)
	calib := tokens(12, 3, 10, cfg.Vocab)
	am, err := MeanAbs(m, calib, 2)
	require.NoError(t, err)
	const name = "model.layers.1.mlp.down_proj"
	ref := make([]float64, cfg.HiddenDim)
	var n int
	_, err = m.Forward(calib, func(nm string, x []float32, M, K int) {
		if nm == name {
			for i, v := range x {
				ref[i%K] += math.Abs(float64(v))
			}
			n += M
		}
	})
	require.NoError(t, err)
	for c := range ref {
		assert.InDelta(t, ref[c]/float64(n), am[name][c], 1e-9)
	}
	_, err = MeanAbs(m, nil, 1)
	assert.Error(t, err)
}

// Bad scales and missing tensors are clear errors, not panics.
func TestFoldErrors(t *testing.T) {
	cfg := tinyConfig()
	ts := randomTensors(cfg, 13)
	sc := randomScales(t, cfg, 14)
	bad := append([]Scales(nil), sc...)
	bad[1].S = append([]float32(nil), sc[1].S...)
	bad[1].S[2] = 0
	_, _, err := Fold(ts, bad)
	assert.ErrorContains(t, err, "v_proj.weight")
	bad[1].S[2] = float32(math.NaN())
	_, _, err = Fold(ts, bad)
	assert.Error(t, err)
	bad[1].S = sc[1].S[:3]
	_, _, err = Fold(ts, bad)
	assert.ErrorContains(t, err, "scales")
	delete(ts, "model.layers.0.input_layernorm.weight")
	_, _, err = Fold(ts, sc)
	assert.ErrorContains(t, err, "model.layers.0.input_layernorm.weight")
}

// Accept keeps a group's scales only when the calibration loss drops: the final loss is
// never above the unscaled one, and it is the loss of the model built from the kept
// scales (recomputed independently).
func TestAcceptKeepsOnlyImprovements(t *testing.T) {
	cfg, m := tinyModel(t, 15)
	calib := tokens(16, 4, 24, cfg.Vocab)
	hs, err := collect.Hessians(m, calib, 2, nil)
	require.NoError(t, err)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}
	mq := CollectModelQuantizer(collect.RTN, gptq.ClipNone, s, gptq.Options{})
	scales := randomScales(t, cfg, 17)
	for i := range scales {
		scales[i].Alpha = 0.5
	}
	kept, base, cur, err := Accept(m, hs, scales, calib, 2, mq)
	require.NoError(t, err)
	assert.LessOrEqual(t, cur, base)
	nm, applied, err := Rescale(m, kept)
	require.NoError(t, err)
	nhs, err := ScaleHessians(hs, applied)
	require.NoError(t, err)
	qs, err := mq(nm, nhs)
	require.NoError(t, err)
	require.NoError(t, collect.Plug(nm, qs))
	l, err := meanNLL(nm, calib, 2)
	require.NoError(t, err)
	assert.InDelta(t, cur, l, 1e-12)
	var dropped int
	for i, sc := range kept {
		if sc.Alpha == 0 {
			dropped++
			for _, v := range sc.S {
				assert.Equal(t, float32(1), v)
			}
		} else {
			assert.Equal(t, scales[i].S, sc.S)
		}
	}
	t.Logf("kept %d of %d random scale groups; calibration NLL %.5f -> %.5f", len(kept)-dropped, len(kept), base, cur)
}
