package plan

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/autoq/autoq/quant"
)

// Options configures Solve.
type Options struct {
	// Exactly one of TargetBits (average bits-per-weight budget) and MaxDamage (limit on the
	// summed predicted damage; the cheapest plan within it is chosen) must be positive.
	TargetBits float64
	MaxDamage  float64
	// Candidates are the schemes a layer may get; empty means every scheme in the
	// sensitivity file plus w16 (which has zero damage by definition).
	Candidates []quant.Recipe
	// Overrides fix the scheme of matching layers (first match wins) before planning.
	Overrides []Rule
	// Metric is the damage used: "kl" (default) or "ppl" (relative perplexity increase,
	// negative values counted as 0).
	Metric    string
	ScaleBits int // bits of a stored scale; default 16
	// Greedy uses the damage-per-bit heuristic instead of the exact dynamic programme.
	Greedy bool
	// Steps is the dynamic programme's budget resolution (default 100000): the costs above
	// each layer's cheapest choice are rounded up to multiples of (budget left after the
	// cheapest choices)/Steps, so the result never exceeds the budget and
	// is optimal for the rounded costs.
	Steps int
	// Groups are sets of layers that must get one scheme (the fused layers of an export
	// target). Each is planned as one unit: its damage is the sum of its members' (damages
	// are assumed to add, as across layers), its cost the sum of theirs. An override may
	// not split a group.
	Groups []Group
	// Allow, when set, says whether a unit (the indices of one layer, or of a group's
	// members, into the sensitivity file's layers) may take a scheme; an error is why not.
	// Candidates it refuses are not offered; an override it refuses is an error.
	Allow func(members []int, r quant.Recipe) error
}

// Group is a set of layers planned as one unit (see Options.Groups).
type Group struct {
	Name    string // e.g. model.layers.0.self_attn.qkv_proj
	Members []int  // indices into the sensitivity file's layers
}

// BudgetError is a bits budget below the cheapest plan the candidates allow.
type BudgetError struct {
	Target, Cheapest float64 // bits per weight
	Constrained      bool    // Options.Allow refused some candidate
}

func (e *BudgetError) Error() string {
	what := "candidates and overrides"
	if e.Constrained {
		what = "candidates, overrides and target rules"
	}
	return fmt.Sprintf("plan: %.3f bits per weight is below the cheapest possible plan (%.3f with these %s)", e.Target, e.Cheapest, what)
}

// Result is a solved assignment.
type Result struct {
	Layers  []Layer
	Choices []quant.Recipe
	Damage  []float64 // predicted damage per layer
	Fixed   []bool    // set by an override
	AvgBits float64
	Total   float64 // summed predicted damage
	// Unmeasured lists layers fixed by an override to a scheme the sensitivity file has
	// no measurement for (counted as zero damage).
	Unmeasured []string
}

// maxOptions bounds the candidates of a layer: the programmes store choices as int8.
const maxOptions = 127

type option struct {
	c      quant.Recipe
	cost   float64 // bits (params * bits per weight)
	icost  int64   // the same, exactly (CostBits)
	damage float64
}

// Solve plans s under opt. The returned Plan has the overrides first, then one exact-name
// rule per planned layer.
func Solve(s *Sensitivity, opt Options) (*Plan, *Result, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	if (opt.TargetBits > 0) == (opt.MaxDamage > 0) {
		return nil, nil, fmt.Errorf("plan: give exactly one of a target average bits and a maximum damage")
	}
	if opt.ScaleBits <= 0 {
		opt.ScaleBits = 16
	}
	if opt.Steps <= 0 {
		opt.Steps = 100000
	}
	if opt.Metric == "" {
		opt.Metric = "kl"
	}
	if opt.Metric != "kl" && opt.Metric != "ppl" {
		return nil, nil, fmt.Errorf("plan: metric %q (want kl or ppl)", opt.Metric)
	}
	cands := opt.Candidates
	if len(cands) == 0 {
		cands = defaultCandidates(s)
	}
	units, err := planUnits(s, opt.Groups)
	if err != nil {
		return nil, nil, err
	}
	n := len(s.Layers)
	res := &Result{Choices: make([]quant.Recipe, n), Damage: make([]float64, n), Fixed: make([]bool, n)}
	measured := make([]map[string]float64, n)
	var totalParams float64
	for i, l := range s.Layers {
		res.Layers = append(res.Layers, Layer{Name: l.Name, Rows: l.Rows, Cols: l.Cols})
		totalParams += float64(l.Params())
		measured[i] = measuredDamage(l, opt.Metric)
	}
	var free []unit
	var opts [][]option
	var fixedCost, fixedDamage float64
	refusedAny := false
	for _, u := range units {
		fixed, hasFixed, err := unitOverride(s, u, opt.Overrides)
		if err != nil {
			return nil, nil, err
		}
		if hasFixed {
			if opt.Allow != nil {
				if err := opt.Allow(u.members, fixed); err != nil {
					return nil, nil, fmt.Errorf("plan: override sets %s: %w", u.name, err)
				}
			}
			for _, i := range u.members {
				l := s.Layers[i]
				d, ok := measured[i][fixed.String()]
				if !ok && !fixed.Full {
					res.Unmeasured = append(res.Unmeasured, l.Name)
				}
				res.Choices[i], res.Damage[i], res.Fixed[i] = fixed, d, true
				fixedCost += float64(l.Params()) * fixed.Bits(l.Rows, l.Cols, opt.ScaleBits)
				fixedDamage += d
			}
			continue
		}
		o, refused := unitOptions(s, u, cands, measured, opt)
		refusedAny = refusedAny || len(refused) > 0
		if len(o) == 0 {
			if len(refused) > 0 {
				return nil, nil, fmt.Errorf("plan: %s has no loadable candidate scheme: %s", u.name, strings.Join(refused, "; "))
			}
			return nil, nil, fmt.Errorf("plan: layer %q has no measured candidate scheme", u.name)
		}
		if len(o) > maxOptions {
			return nil, nil, fmt.Errorf("plan: layer %q has %d candidate schemes; the planner takes at most %d (give --candidates)", u.name, len(o), maxOptions)
		}
		free = append(free, u)
		opts = append(opts, o)
	}
	var pick []int
	if opt.TargetBits > 0 {
		budget := opt.TargetBits*totalParams - fixedCost
		if min := minCost(opts); budget < min-1e-6 {
			return nil, nil, &BudgetError{Target: opt.TargetBits, Cheapest: (min + fixedCost) / totalParams, Constrained: refusedAny}
		}
		pick = greedyBudget(opts, budget)
		if !opt.Greedy {
			// The programme is exact when the costs' common unit gives a table of
			// manageable size; otherwise costs are rounded up and a little budget can be
			// lost, so the greedy answer is kept when it happens to be better.
			if dp := dpBudget(opts, budget, opt.Steps); totalDamage(opts, dp) <= totalDamage(opts, pick) {
				pick = dp
			}
		}
	} else {
		if opt.Greedy {
			pick, err = greedyDamage(opts, opt.MaxDamage-fixedDamage)
		} else {
			pick, err = dpDamage(opts, opt.MaxDamage-fixedDamage, opt.Steps)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	for j, u := range free {
		c := opts[j][pick[j]].c
		for _, i := range u.members {
			res.Choices[i], res.Damage[i] = c, measured[i][c.String()]
		}
	}
	for _, d := range res.Damage {
		res.Total += d
	}
	res.AvgBits = AverageBits(res.Layers, res.Choices, opt.ScaleBits)
	p := &Plan{Version: 1, Source: "auto", ScaleBits: opt.ScaleBits, Int4Method: "best", TargetBits: opt.TargetBits,
		MaxDamage: opt.MaxDamage, AvgBits: res.AvgBits, PredictedDamage: res.Total, Metric: opt.Metric}
	p.Rules = append(p.Rules, opt.Overrides...)
	for i, l := range res.Layers {
		if !res.Fixed[i] {
			p.Rules = append(p.Rules, Rule{Pattern: l.Name, Scheme: res.Choices[i]})
		}
	}
	return p, res, nil
}

func defaultCandidates(s *Sensitivity) []quant.Recipe {
	set := map[string]quant.Recipe{"w16": quant.FullPrecision}
	for _, l := range s.Layers {
		for name := range l.Damage {
			c, _ := quant.ParseRecipe(name) // validated
			set[c.String()] = c
		}
	}
	keys := slices.Sorted(maps.Keys(set))
	out := make([]quant.Recipe, len(keys))
	for i, k := range keys {
		out[i] = set[k]
	}
	return out
}

// measuredDamage maps canonical scheme names to the chosen metric.
func measuredDamage(l LayerSensitivity, metric string) map[string]float64 {
	out := map[string]float64{"w16": 0}
	for name, d := range l.Damage {
		c, _ := quant.ParseRecipe(name)
		v := d.KL
		if metric == "ppl" {
			v = math.Max(d.PPLDelta, 0)
		}
		out[c.String()] = v
	}
	return out
}

// dpBudget solves the multiple-choice knapsack exactly on costs rounded up to multiples of
// budget/steps: dp[b] is the least damage of the layers so far using at most b units.
// exactUnit is the greatest common divisor of all (relative) integer costs, or 0.
// maxExactSteps bounds the exact programme's table (layers x steps bytes) to ~64 MB.
// dpDamage finds the cheapest assignment whose summed damage is at most maxDamage: the
// same programme over cost units (up to the most expensive plan), then the least budget
// whose minimal damage fits.
// relative subtracts each layer's cheapest cost from its options (and their sum from the
// budget), so the programme's resolution is spent on the part of the budget that is
// actually being chosen, not on the bits every plan pays.
// upgrade finds the move with the largest damage reduction per extra bit among those
// costing at most room; ok is false when none helps.
// greedyBudget starts every layer at its cheapest choice and repeatedly takes the upgrade
// with the most damage saved per extra bit that still fits the budget.
// greedyDamage upgrades by damage per bit until the summed damage is within maxDamage.
