package plan

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// Fuzz targets for the plan and sensitivity files. Seeds are built here plus
// testdata/stories260K_sens.json; regressions found by fuzzing live in testdata/fuzz/FuzzX.
// Run one with `go test -run '^$' -fuzz '^FuzzParsePlan$' -parallel 1 ./plan`.

// FuzzParsePlan: any bytes give a plan or an error naming the file; an accepted plan
// resolves any layer name without error and survives Write's encoding -> Parse unchanged.
func FuzzParsePlan(f *testing.F) {
	for _, p := range []*Plan{
		Preset(mustChoice(f, "w4g128"), 16),
		Uniform(mustChoice(f, "w8a8s"), 32),
		{Version: 1, Source: "auto", ScaleBits: 16, TargetBits: 4.5, AvgBits: 4.4, Metric: "kl", Rules: []Rule{
			{Pattern: "model.layers.0.mlp.down_proj", Scheme: mustChoice(f, "w4g32a")}, {Pattern: "*", Scheme: quant.FullPrecision}}},
	} {
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "model.layers.0.mlp.down_proj")
	}
	f.Add([]byte(`{"version":1,"rules":[{"pattern":"[","scheme":"w8"}]}`), "x")
	f.Add([]byte(`{"version":1,"rules":[{"pattern":"*","scheme":"w5"}]}`), "x")
	f.Add([]byte(`{"version":2}`), "")
	const name = "fuzz/plan.json"
	f.Fuzz(func(t *testing.T, raw []byte, layer string) {
		p, err := Parse(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		if p.ScaleBits <= 0 {
			t.Fatalf("scale bits %d accepted", p.ScaleBits)
		}
		for _, l := range []string{layer, "model.layers.0.self_attn.q_proj", ""} {
			if _, err := p.SchemeFor(l); err != nil {
				t.Fatalf("accepted plan cannot resolve %q: %v", l, err)
			}
		}
		b, err := json.MarshalIndent(p, "", "  ")
		back := testutil.Reparse(t, "plan", Parse, name, b, err)
		if !reflect.DeepEqual(p, back) {
			t.Fatalf("round trip changed the plan:\n got %+v\nwant %+v", back, p)
		}
	})
}

// FuzzParseSensitivity: any bytes give a sensitivity table or an error naming the file; an
// accepted table round-trips through its encoding, and solving it (both ways, exact and
// greedy) fails cleanly or gives a plan that parses back and assigns every layer the scheme
// the solver chose.
func FuzzParseSensitivity(f *testing.F) {
	real, err := os.ReadFile("testdata/stories260K_sens.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, 4.5, false)
	small := `{"tokens":8,"baseline_ppl":2,"schemes":["w4g32","w8"],"layers":[` +
		`{"name":"a","rows":4,"cols":64,"damage":{"w4g32":{"kl":0.5,"ppl":3,"ppl_delta":0.5},"w8":{"kl":0.01,"ppl":2.01,"ppl_delta":0.005}}},` +
		`{"name":"b","rows":64,"cols":4,"damage":{"w8":{"kl":0.1,"ppl":2.2,"ppl_delta":0.1}}}]}`
	f.Add([]byte(small), 8.0, false)
	f.Add([]byte(small), 0.3, true) // as a damage limit
	f.Add([]byte(`{"layers":[{"name":"x[","rows":64,"cols":64,"damage":{"w8":{"kl":0}}}]}`), 9.0, false)
	f.Add([]byte(`{"layers":[{"name":"a","rows":1,"cols":1,"damage":{"w9":{}}}]}`), 9.0, false)
	f.Add([]byte(`{"layers":[]}`), 1.0, false)
	const name = "fuzz/sens.json"
	f.Fuzz(func(t *testing.T, raw []byte, target float64, byDamage bool) {
		s, err := ParseSensitivity(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		b, err := json.Marshal(s)
		back := testutil.Reparse(t, "table", ParseSensitivity, name, b, err)
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed the table")
		}
		for _, greedy := range []bool{false, true} {
			opt := Options{TargetBits: target, Greedy: greedy, Steps: 1000}
			if byDamage {
				opt = Options{MaxDamage: target, Greedy: greedy, Steps: 1000}
			}
			p, res, err := Solve(s, opt)
			if err != nil {
				continue
			}
			pb, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("solved plan does not encode: %v", err)
			}
			pp, err := Parse("solved.json", pb)
			if err != nil {
				t.Fatalf("solved plan does not parse: %v\n%s", err, pb)
			}
			got, err := pp.Resolve(res.Layers)
			if err != nil {
				t.Fatalf("solved plan does not resolve: %v", err)
			}
			if !reflect.DeepEqual(got, res.Choices) {
				t.Fatalf("solved plan assigns %v, the solver chose %v", got, res.Choices)
			}
		}
	})
}

// A layer with more candidate schemes than the programmes' int8 choice tables hold used
// to panic (index out of range); it is refused, naming the layer.
func TestSolveTooManyCandidates(t *testing.T) {
	l := LayerSensitivity{Name: "model.layers.0.mlp.down_proj", Rows: 64, Cols: 256, Damage: map[string]Damage{"w8": {KL: 1e-9}}}
	for g := 1; len(l.Damage) <= maxOptions; g++ {
		l.Damage[fmt.Sprintf("w4g%d", g)] = Damage{KL: 1 / float64(g)}
	}
	s := &Sensitivity{Layers: []LayerSensitivity{l}}
	require.NoError(t, s.Validate())
	for _, opt := range []Options{{TargetBits: 5}, {MaxDamage: 0.5}, {TargetBits: 5, Greedy: true}} {
		_, _, err := Solve(s, opt)
		require.ErrorContains(t, err, `layer "model.layers.0.mlp.down_proj" has 129 candidate schemes; the planner takes at most 127`)
	}
	delete(l.Damage, "w4g1")
	delete(l.Damage, "w4g2")
	_, res, err := Solve(s, Options{TargetBits: 5}) // 127 with w16: the most it takes
	require.NoError(t, err)
	require.Len(t, res.Choices, 1)
}

// Found by FuzzParsePlan: a rule without "scheme" was accepted as 0-bit weights (the zero
// quant.Recipe), one without "pattern" silently matched nothing.
func TestParsePlanRefusesIncompleteRules(t *testing.T) {
	_, err := Parse("p.json", []byte(`{"version":1,"rules":[{"pattern":"*.o_proj"}]}`))
	require.ErrorContains(t, err, `plan file p.json: rule "*.o_proj" has no valid scheme`)
	_, err = Parse("p.json", []byte(`{"version":1,"rules":[{"pattern":"*","scheme":"w8"},{"scheme":"w8"}]}`))
	require.ErrorContains(t, err, "plan file p.json: rule 1 has no pattern")
	p, err := Parse("p.json", []byte(`{"version":1,"rules":[{"pattern":"*","scheme":"w16"}]}`))
	require.NoError(t, err)
	require.Equal(t, quant.FullPrecision, p.Rules[0].Scheme)
}
