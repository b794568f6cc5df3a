package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// llamaGroups are the fused groups of decoder layer 0 of synthetic(): q/k/v and gate/up.
func llamaGroups(s *Sensitivity) []Group {
	var out []Group
	for l := 0; l*7 < len(s.Layers); l++ {
		b := 7 * l
		out = append(out,
			Group{Name: fmt.Sprintf("model.layers.%d.self_attn.qkv_proj", l), Members: []int{b, b + 1, b + 2}},
			Group{Name: fmt.Sprintf("model.layers.%d.mlp.gate_up_proj", l), Members: []int{b + 4, b + 5}})
	}
	return out
}

// A group is one unit: its members get one scheme, and the plan is the optimum over
// units with summed member costs and damages (checked by enumerating every assignment).
func TestGroupsArePlannedAsOneUnit(t *testing.T) {
	cands := []quant.Recipe{mustChoice(t, "w4g128"), mustChoice(t, "w8"), mustChoice(t, "w8a8"), quant.FullPrecision}
	for seed := uint64(1); seed <= 10; seed++ {
		s := synthetic(seed, 1, 256, 512)
		groups := llamaGroups(s)
		units := [][]int{groups[0].Members, {3}, groups[1].Members, {6}}
		var opts [][]option
		var params float64
		for _, u := range units {
			var o []option
			for _, c := range cands {
				var cost, dmg float64
				for _, i := range u {
					l := s.Layers[i]
					cost += float64(c.CostBits(l.Rows, l.Cols, 16))
					dmg += measuredDamage(l, "kl")[c.String()]
				}
				o = append(o, option{c: c, cost: cost, damage: dmg})
			}
			opts = append(opts, o)
		}
		for _, l := range s.Layers {
			params += float64(l.Params())
		}
		target := 4.6 + float64(seed%6)*1.1
		_, res, err := Solve(s, Options{TargetBits: target, Candidates: cands, Groups: groups})
		require.NoError(t, err)
		for _, g := range groups {
			for _, i := range g.Members[1:] {
				assert.Equal(t, res.Choices[g.Members[0]], res.Choices[i], "seed %d: %s shares one scheme", seed, g.Name)
			}
		}
		assert.LessOrEqual(t, res.AvgBits, target+1e-9)
		_, best, ok := brute(opts, func(c, _ float64) bool { return c <= target*params+1e-6 }, func(_, d1, _, d2 float64) bool { return d1 < d2 })
		require.True(t, ok)
		assert.InDelta(t, best, res.Total, 1e-12, "seed %d: the optimum over units", seed)
	}
}

// Without groups or a target nothing changes: the same plan as before.
func TestNoGroupsNoChange(t *testing.T) {
	s, err := ReadSensitivity("testdata/stories260K_sens.json")
	require.NoError(t, err)
	p1, r1, err := Solve(s, Options{TargetBits: 5.3})
	require.NoError(t, err)
	p2, r2, err := Solve(s, Options{TargetBits: 5.3, Groups: []Group{}, Allow: func([]int, quant.Recipe) error { return nil }})
	require.NoError(t, err)
	assert.Equal(t, p1, p2)
	assert.Equal(t, r1, r2)
}

// Allow removes candidates per unit (here: no asymmetric scheme on attention), and the
// planner still meets the budget with what is left.
func TestAllowRestrictsCandidates(t *testing.T) {
	s, err := ReadSensitivity("testdata/stories260K_sens.json")
	require.NoError(t, err)
	allow := func(members []int, r quant.Recipe) error {
		if !r.Full && !r.Weight.Symmetric && strings.Contains(s.Layers[members[0]].Name, "self_attn") {
			return fmt.Errorf("no zero points on attention")
		}
		return nil
	}
	_, res, err := Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Allow: allow})
	require.NoError(t, err)
	for i, l := range res.Layers {
		if strings.Contains(l.Name, "self_attn") {
			c := res.Choices[i]
			assert.True(t, c.Full || c.Weight.Symmetric, "%s got %s", l.Name, c)
		}
	}
	assert.LessOrEqual(t, res.AvgBits, 6.0+1e-9)

	// A unit left with no candidate is an error that carries the target's reasons.
	none := func([]int, quant.Recipe) error { return fmt.Errorf("engine says no") }
	_, _, err = Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Allow: none, Candidates: []quant.Recipe{mustChoice(t, "w8")}})
	require.EqualError(t, err, "plan: the fused group model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj) has no loadable candidate scheme: engine says no")

	// Only w16 left everywhere: the budget error says the target's rules are counted.
	onlyFull := func(_ []int, r quant.Recipe) error {
		if r.Full {
			return nil
		}
		return fmt.Errorf("no")
	}
	_, _, err = Solve(s, Options{TargetBits: 6, Allow: onlyFull})
	require.EqualError(t, err, "plan: 6.000 bits per weight is below the cheapest possible plan (16.000 with these candidates, overrides and target rules)")
}

func TestOverrideMayNotSplitAGroup(t *testing.T) {
	s, err := ReadSensitivity("testdata/stories260K_sens.json")
	require.NoError(t, err)
	rule := func(x string) Rule {
		r, err := ParseOverride(x)
		require.NoError(t, err)
		return r
	}
	_, _, err = Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Overrides: []Rule{rule("*.q_proj=w8")}})
	require.EqualError(t, err, "plan: overrides would split the fused group model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj), "+
		"which the target loads as one layer with one scheme: model.layers.0.self_attn.q_proj=w8c ('*.q_proj=w8c'), "+
		"but no override covers model.layers.0.self_attn.k_proj, model.layers.0.self_attn.v_proj; override every member with the same scheme")

	_, _, err = Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Overrides: []Rule{rule("*.gate_proj=w8"), rule("*.up_proj=w4g32")}})
	require.ErrorContains(t, err, "plan: overrides would split the fused group model.layers.0.mlp.gate_up_proj (gate_proj, up_proj)")
	require.ErrorContains(t, err, "model.layers.0.mlp.up_proj=w4g32 ('*.up_proj=w4g32')")

	// Covering every member with one scheme is fine, and fixes the whole group.
	_, res, err := Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Overrides: []Rule{rule("*.[qkv]_proj=w8")}})
	require.NoError(t, err)
	for i, l := range res.Layers {
		if strings.HasSuffix(l.Name, "q_proj") || strings.HasSuffix(l.Name, "k_proj") || strings.HasSuffix(l.Name, "v_proj") {
			assert.Equal(t, "w8c", res.Choices[i].String())
			assert.True(t, res.Fixed[i])
		}
	}

	// An override to a scheme the target refuses is an error carrying the reason.
	refuse := func(_ []int, r quant.Recipe) error {
		if r.String() == "w8c" {
			return fmt.Errorf("w8c is not loadable here")
		}
		return nil
	}
	_, _, err = Solve(s, Options{TargetBits: 6, Groups: llamaGroups(s), Allow: refuse, Overrides: []Rule{rule("*.o_proj=w8")}})
	require.EqualError(t, err, "plan: override sets model.layers.0.self_attn.o_proj: w8c is not loadable here")
}
