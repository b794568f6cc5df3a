package autoquant

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// PlanOptions configures Plan (`autoq plan`).
type PlanOptions struct {
	Sens       string   // sensitivity file
	TargetBits float64  // average bits per weight, scales counted
	KLBudget   float64  // instead: the cheapest plan within this summed predicted damage
	Overrides  []string // GLOB=SCHEME
	Metric     string   // kl or ppl
	Candidates string   // comma-separated schemes the planner may choose ("" = all measured, and w16)
	Greedy     bool
	ScaleBits  int
	Preset     string // write the preset plan with this int4 scheme instead of planning
	Uniform    string // write a plan applying this one scheme everywhere
	// Target is the export target (vllm, transformers, tensorrt, any; default vllm): the
	// planner offers each layer only the schemes it loads and plans fused layers as one.
	Target string
	Out    string
	Force  bool // overwrite an existing plan file
}

// PlanRow is one layer of a solved plan.
type PlanRow struct {
	Layer  string  `json:"layer"`
	Params int     `json:"params"`
	Scheme string  `json:"scheme"`
	Bits   float64 `json:"bits"`
	Damage float64 `json:"predicted_damage"`
	Fixed  bool    `json:"override,omitempty"`
}

// PlanReport is the result of Plan: the plan and, when it was solved, its layers.
type PlanReport struct {
	Plan   *plan.Plan `json:"plan"`
	Layers []PlanRow  `json:"layers"`
	file   string
}

// parseOverrides parses --override GLOB=SCHEME rules, in order.
func parseOverrides(overrides []string) ([]plan.Rule, error) {
	var rules []plan.Rule
	for _, o := range overrides {
		r, err := plan.ParseOverride(o)
		if err != nil {
			return nil, usagef("--override: %v", err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// Plan is `autoq plan`: a scheme per layer under a bits (or damage) budget, or a preset.
func Plan(env Env, f PlanOptions) (*PlanReport, error) {
	rules, err := parseOverrides(f.Overrides)
	if err != nil {
		return nil, err
	}
	if err := checkOutputs(env, f.Force, []string{f.Sens}, outFile("--out", f.Out)); err != nil {
		return nil, err
	}
	if f.Preset != "" || f.Uniform != "" {
		return presetPlan(f, rules)
	}
	if f.Sens == "" {
		return nil, usagef("--sens is required (or --preset/--uniform)")
	}
	if (f.TargetBits > 0) == (f.KLBudget > 0) {
		return nil, usagef("give exactly one of --target-bits and --kl-budget")
	}
	if f.Metric != "kl" && f.Metric != "ppl" {
		return nil, usagef("--metric must be kl or ppl, not %q", f.Metric)
	}
	var cands []quant.Recipe
	if f.Candidates != "" {
		for _, c := range strings.Split(f.Candidates, ",") {
			ch, err := quant.ParseRecipe(strings.TrimSpace(c))
			if err != nil {
				return nil, usagef("--candidates: %v", err)
			}
			cands = append(cands, ch)
		}
	}
	s, err := plan.ReadSensitivity(f.Sens)
	if err != nil {
		return nil, err
	}
	model := tensor.F32
	if s.DType != "" {
		model, _ = tensor.ParseDType(s.DType) // validated
	}
	var layers []plan.Layer
	for _, l := range s.Layers {
		layers = append(layers, plan.Layer{Name: l.Name, Rows: l.Rows, Cols: l.Cols})
	}
	et, err := openTarget(f.Target, ServeDType(model), layers)
	if err != nil {
		return nil, err
	}
	opts := plan.Options{TargetBits: f.TargetBits, MaxDamage: f.KLBudget, Overrides: rules, Candidates: cands,
		Metric: f.Metric, Greedy: f.Greedy, ScaleBits: f.ScaleBits}
	p, res, err := solveFor(et, s, opts)
	if err != nil {
		return nil, err
	}
	if f.Out != "" {
		if err := plan.Write(f.Out, p); err != nil {
			return nil, err
		}
	}
	out := &PlanReport{Plan: p, file: f.Out}
	for i, l := range res.Layers {
		out.Layers = append(out.Layers, PlanRow{Layer: l.Name, Params: l.Rows * l.Cols, Scheme: res.Choices[i].String(),
			Bits: res.Choices[i].Bits(l.Rows, l.Cols, f.ScaleBits), Damage: res.Damage[i], Fixed: res.Fixed[i]})
	}
	if len(res.Unmeasured) > 0 {
		env.logf("warning: overrides set schemes the sensitivity file did not measure (counted as no damage): %s\n", strings.Join(res.Unmeasured, ", "))
	}
	return out, nil
}

// solveFor plans s for the target: fused groups as one unit and only loadable schemes
// ("any" plans freely: its export warns). A budget below what the target allows is
// explained by the layers it can only load in full precision.
func solveFor(et *exportTarget, s *plan.Sensitivity, opts plan.Options) (*plan.Plan, *plan.Result, error) {
	if len(et.layers) != len(s.Layers) {
		return nil, nil, fmt.Errorf("target %s: %d layers, the sensitivity file has %d", et.t.Name, len(et.layers), len(s.Layers))
	}
	for i, l := range s.Layers {
		if et.layers[i].Name != l.Name {
			return nil, nil, fmt.Errorf("target %s: layer %d is %s, in the sensitivity file %s", et.t.Name, i, et.layers[i].Name, l.Name)
		}
	}
	if et.warn == nil {
		et.planOptions(&opts)
	}
	p, res, err := plan.Solve(s, opts)
	var be *plan.BudgetError
	if errors.As(err, &be) { // (a measurement the sensitivity run skipped, like a width a block cannot store, is no refusal)
		cands := opts.Candidates
		if len(cands) == 0 {
			seen := map[string]bool{}
			for _, l := range s.Layers {
				for n := range l.Damage {
					if c, err := quant.ParseRecipe(n); err == nil && !seen[c.String()] {
						seen[c.String()] = true
						cands = append(cands, c)
					}
				}
			}
			sort.Slice(cands, func(i, j int) bool { return cands[i].String() < cands[j].String() })
		}
		if why := et.fullOnly(cands); why != "" {
			return nil, nil, fmt.Errorf("%w;\n%s", err, why)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	p.Target = et.t.Name
	return p, res, nil
}

// presetPlan writes the hand preset or a uniform plan.
func presetPlan(f PlanOptions, rules []plan.Rule) (*PlanReport, error) {
	if f.Preset != "" && f.Uniform != "" {
		return nil, usagef("--preset and --uniform exclude each other")
	}
	c, err := quant.ParseRecipe(f.Preset + f.Uniform)
	if err != nil {
		return nil, usagef("%v", err)
	}
	var p *plan.Plan
	if f.Preset != "" {
		p = plan.Preset(c, f.ScaleBits)
	} else {
		p = plan.Uniform(c, f.ScaleBits)
	}
	p.Rules = append(rules, p.Rules...)
	if f.Out == "" {
		return nil, usagef("--out is required")
	}
	if err := plan.Write(f.Out, p); err != nil {
		return nil, err
	}
	return &PlanReport{Plan: p, file: f.Out}, nil
}

// WriteTable prints the per-layer plan and its totals (or, for a preset, what was written).
func (out *PlanReport) WriteTable(w io.Writer) {
	if out.Layers == nil {
		fmt.Fprintf(w, "wrote %s plan (%d rules) to %s\n", out.Plan.Source, len(out.Plan.Rules), out.file)
		return
	}
	fmt.Fprintf(w, "%-36s %10s %-10s %7s %12s\n", "layer", "params", "scheme", "bits", "pred. "+out.Plan.Metric)
	counts := map[string]int{}
	for _, r := range out.Layers {
		mark := ""
		if r.Fixed {
			mark = " (override)"
		}
		fmt.Fprintf(w, "%-36s %10d %-10s %7.3f %12.6f%s\n", r.Layer, r.Params, r.Scheme, r.Bits, r.Damage, mark)
		counts[r.Scheme]++
	}
	var parts []string
	for _, s := range []string{"w16", "w8c", "w8ca8", "w8ca8s"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", s, counts[s]))
			delete(counts, s)
		}
	}
	rest := make([]string, 0, len(counts))
	for s := range counts {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		parts = append(parts, fmt.Sprintf("%s x%d", s, counts[s]))
	}
	fmt.Fprintf(w, "\naverage %.3f bits/weight, predicted %s %.6f; %s\n", out.Plan.AvgBits, out.Plan.Metric, out.Plan.PredictedDamage, strings.Join(parts, ", "))
	if out.file != "" {
		fmt.Fprintf(w, "plan written to %s\n", out.file)
	}
}
