package plan

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustChoice(t testing.TB, s string) quant.Recipe {
	return testutil.Must(t, quant.ParseRecipe, s)
}

// synthetic builds a sensitivity table shaped like a 7B Llama (layers x 7 projections)
// with log-normally spread layer sensitivities and the usual ~4x damage per bit removed.
func synthetic(seed uint64, nLayers int, dim, hidden int) *Sensitivity {
	r := testutil.Rand(seed)
	s := &Sensitivity{Schemes: []string{"w4g128", "w8", "w8a8"}}
	shapes := []struct {
		name       string
		rows, cols int
	}{{"self_attn.q_proj", dim, dim}, {"self_attn.k_proj", dim / 4, dim}, {"self_attn.v_proj", dim / 4, dim},
		{"self_attn.o_proj", dim, dim}, {"mlp.gate_proj", hidden, dim}, {"mlp.up_proj", hidden, dim}, {"mlp.down_proj", dim, hidden}}
	for i := 0; i < nLayers; i++ {
		for _, sh := range shapes {
			sens := math.Exp(r.NormFloat64()*1.2) * 1e-3
			if i == 0 || i == nLayers-1 {
				sens *= 8 // first and last blocks matter more
			}
			w8 := sens * (0.03 + 0.02*r.Float64())
			s.Layers = append(s.Layers, LayerSensitivity{
				Name: fmt.Sprintf("model.layers.%d.%s", i, sh.name), Rows: sh.rows, Cols: sh.cols,
				Damage: map[string]Damage{
					"w4g128": {KL: sens},
					"w8":     {KL: w8},
					"w8a8":   {KL: w8 * (1.2 + r.Float64())},
				},
			})
		}
	}
	return s
}

// brute enumerates every assignment of a small instance.
func brute(opts [][]option, feasible func(cost, damage float64) bool, better func(c1, d1, c2, d2 float64) bool) (bestCost, bestDamage float64, found bool) {
	var rec func(j int, cost, dmg float64)
	rec = func(j int, cost, dmg float64) {
		if j == len(opts) {
			if feasible(cost, dmg) && (!found || better(cost, dmg, bestCost, bestDamage)) {
				bestCost, bestDamage, found = cost, dmg, true
			}
			return
		}
		for _, x := range opts[j] {
			rec(j+1, cost+x.cost, dmg+x.damage)
		}
	}
	rec(0, 0, 0)
	return
}

func optionsOf(s *Sensitivity, cands []quant.Recipe) [][]option {
	var opts [][]option
	for _, l := range s.Layers {
		m := measuredDamage(l, "kl")
		var o []option
		for _, c := range cands {
			o = append(o, option{c: c, cost: float64(l.Params()) * c.Bits(l.Rows, l.Cols, 16), damage: m[c.String()]})
		}
		opts = append(opts, o)
	}
	return opts
}

func TestDynamicProgrammeMatchesBruteForce(t *testing.T) {
	cands := []quant.Recipe{mustChoice(t, "w4g128"), mustChoice(t, "w8"), mustChoice(t, "w8a8"), quant.FullPrecision}
	for seed := uint64(1); seed <= 20; seed++ {
		s := synthetic(seed, 1, 256, 512) // 7 layers, 4^7 assignments
		opts := optionsOf(s, cands)
		var params float64
		for _, l := range s.Layers {
			params += float64(l.Params())
		}
		target := 4.3 + float64(seed%10)*0.9
		steps := 20000
		_, res, err := Solve(s, Options{TargetBits: target, Candidates: cands, Steps: steps})
		require.NoError(t, err)
		budget := target * params
		assert.LessOrEqual(t, res.AvgBits*params, budget+1e-6, "within budget")
		// Upper bound: the true optimum. Lower bound on quality: the true optimum with the
		// budget shrunk by the rounding slack (one unit per layer) is never beaten.
		_, opt, _ := brute(opts, func(c, _ float64) bool { return c <= budget }, func(c1, d1, c2, d2 float64) bool { return d1 < d2 })
		slack := float64(len(opts)) * budget / float64(steps)
		_, optTight, ok := brute(opts, func(c, _ float64) bool { return c <= budget-slack }, func(c1, d1, c2, d2 float64) bool { return d1 < d2 })
		assert.GreaterOrEqual(t, res.Total, opt-1e-12, "seed %d", seed)
		if ok {
			assert.LessOrEqual(t, res.Total, optTight+1e-12, "seed %d", seed)
		}

		// --max-kl mode: the cheapest assignment within the damage limit.
		limit := opt * 1.5
		_, resD, err := Solve(s, Options{MaxDamage: limit, Candidates: cands, Steps: steps})
		require.NoError(t, err)
		assert.LessOrEqual(t, resD.Total, limit+1e-12)
		minCost, _, _ := brute(opts, func(_, d float64) bool { return d <= limit }, func(c1, d1, c2, d2 float64) bool { return c1 < c2 })
		var top float64
		for _, o := range opts {
			top += o[len(o)-1].cost
		}
		assert.LessOrEqual(t, resD.AvgBits*params, minCost+float64(len(opts)+1)*top/float64(steps), "seed %d", seed)
		assert.GreaterOrEqual(t, resD.AvgBits*params, minCost-1e-6, "seed %d", seed)
	}
}

func TestGreedyIsCloseToExactOnRealisticTables(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		s := synthetic(seed, 32, 4096, 11008) // Llama-2-7B shapes: 224 layers
		for _, target := range []float64{4.5, 5.3} {
			_, exact, err := Solve(s, Options{TargetBits: target})
			require.NoError(t, err)
			_, greedy, err := Solve(s, Options{TargetBits: target, Greedy: true})
			require.NoError(t, err)
			assert.LessOrEqual(t, greedy.AvgBits, target+1e-9)
			// Exact never loses to greedy beyond the rounding slack; greedy stays within 2%.
			assert.LessOrEqual(t, exact.Total, greedy.Total*1.001, "seed %d target %v", seed, target)
			assert.LessOrEqual(t, greedy.Total, exact.Total*1.02, "seed %d target %v: greedy %g exact %g", seed, target, greedy.Total, exact.Total)
		}
	}
}

func TestOverridesAndPlanFile(t *testing.T) {
	s := synthetic(7, 4, 256, 512)
	ov, err := ParseOverride("*.o_proj=w16")
	require.NoError(t, err)
	p, res, err := Solve(s, Options{TargetBits: 6.5, Overrides: []Rule{ov}})
	require.NoError(t, err)
	for i, l := range res.Layers {
		c, err := p.SchemeFor(l.Name)
		require.NoError(t, err)
		assert.Equal(t, res.Choices[i], c, l.Name)
		if filepath.Ext(l.Name) == ".o_proj" {
			assert.True(t, c.Full, l.Name)
			assert.True(t, res.Fixed[i])
		}
	}
	assert.LessOrEqual(t, res.AvgBits, 6.5+1e-9)
	assert.Equal(t, res.AvgBits, p.AvgBits)

	file := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, Write(file, p))
	back, err := Read(file)
	require.NoError(t, err)
	assert.Equal(t, p, back)

	_, err = ParseOverride("*.o_proj")
	assert.Error(t, err)
	_, err = ParseOverride("*.o_proj=w9")
	assert.ErrorContains(t, err, "w9")
	o, err := ParseOverride("*.o_proj=w6g32a") // any width from 3 to 8 bits
	require.NoError(t, err)
	assert.Equal(t, "w6g32a", o.Scheme.String())
	_, _, err = Solve(s, Options{TargetBits: 3})
	assert.ErrorContains(t, err, "cheapest possible plan")
}

func TestPresetRules(t *testing.T) {
	p := Preset(mustChoice(t, "w4g128"), 16)
	for name, want := range map[string]string{
		"model.layers.3.self_attn.q_proj": "w8c",
		"model.layers.3.self_attn.k_proj": "w8c",
		"model.layers.3.self_attn.o_proj": "w16",
		"model.layers.3.mlp.gate_proj":    "w4g128",
		"model.layers.3.mlp.down_proj":    "w4g128",
		"lm_head":                         "w16",
	} {
		c, err := p.SchemeFor(name)
		require.NoError(t, err)
		assert.Equal(t, want, c.String(), name)
	}
}

// TestGreedyIsCloseToExactOnMeasuredData uses the sensitivity table measured on the real
// stories260K model (testdata/stories260K_sens.json, from `autoq sensitivity`).
func TestGreedyIsCloseToExactOnMeasuredData(t *testing.T) {
	s, err := ReadSensitivity("testdata/stories260K_sens.json")
	require.NoError(t, err)
	require.Len(t, s.Layers, 35)
	for _, target := range []float64{4.7, 5.0, 5.3, 6.0, 7.0, 8.5} {
		_, exact, err := Solve(s, Options{TargetBits: target})
		require.NoError(t, err)
		_, greedy, err := Solve(s, Options{TargetBits: target, Greedy: true})
		require.NoError(t, err)
		assert.LessOrEqual(t, exact.AvgBits, target+1e-9)
		assert.LessOrEqual(t, greedy.AvgBits, target+1e-9)
		assert.LessOrEqual(t, exact.Total, greedy.Total+1e-12, "target %v", target)
		assert.LessOrEqual(t, greedy.Total, exact.Total*1.03+1e-6, "target %v: greedy %g exact %g", target, greedy.Total, exact.Total)
		t.Logf("target %.1f: exact KL %.6f (%.3f bits), greedy %.6f (%.3f bits)", target, exact.Total, exact.AvgBits, greedy.Total, greedy.AvgBits)
	}
}
