package plan

import (
	"fmt"
	"math"
	"path"
	"sort"
)

// Options configures Solve.
type Options struct {
	// Exactly one of TargetBits (average bits-per-weight budget) and MaxDamage (limit on the
	// summed predicted damage; the cheapest plan within it is chosen) must be positive.
	TargetBits float64
	MaxDamage  float64
	// Candidates are the schemes a layer may get; empty means every scheme in the
	// sensitivity file plus w16 (which has zero damage by definition).
	Candidates []Choice
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
}

// Result is a solved assignment.
type Result struct {
	Layers  []Layer
	Choices []Choice
	Damage  []float64 // predicted damage per layer
	Fixed   []bool    // set by an override
	AvgBits float64
	Total   float64 // summed predicted damage
	// Unmeasured lists layers fixed by an override to a scheme the sensitivity file has
	// no measurement for (counted as zero damage).
	Unmeasured []string
}

type option struct {
	c      Choice
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
	res := &Result{}
	var free []int
	var opts [][]option
	var fixedCost, fixedDamage, totalParams float64
	for i, l := range s.Layers {
		res.Layers = append(res.Layers, Layer{Name: l.Name, Rows: l.Rows, Cols: l.Cols})
		totalParams += float64(l.Params())
		measured := measuredDamage(l, opt.Metric)
		fixed, hasFixed, err := override(opt.Overrides, l.Name)
		if err != nil {
			return nil, nil, err
		}
		if hasFixed {
			d, ok := measured[fixed.String()]
			if !ok && !fixed.Full {
				res.Unmeasured = append(res.Unmeasured, l.Name)
			}
			res.Choices = append(res.Choices, fixed)
			res.Damage = append(res.Damage, d)
			res.Fixed = append(res.Fixed, true)
			fixedCost += float64(l.Params()) * fixed.Bits(l.Rows, l.Cols, opt.ScaleBits)
			fixedDamage += d
			continue
		}
		var o []option
		for _, c := range cands {
			d, ok := measured[c.String()]
			if !ok && !c.Full {
				continue
			}
			ic := c.CostBits(l.Rows, l.Cols, opt.ScaleBits)
			o = append(o, option{c: c, cost: float64(ic), icost: ic, damage: d})
		}
		if len(o) == 0 {
			return nil, nil, fmt.Errorf("plan: layer %q has no measured candidate scheme", l.Name)
		}
		res.Choices = append(res.Choices, Choice{})
		res.Damage = append(res.Damage, 0)
		res.Fixed = append(res.Fixed, false)
		free = append(free, i)
		opts = append(opts, o)
	}
	var pick []int
	var err error
	if opt.TargetBits > 0 {
		budget := opt.TargetBits*totalParams - fixedCost
		if min := minCost(opts); budget < min-1e-6 {
			return nil, nil, fmt.Errorf("plan: %.3f bits per weight is below the cheapest possible plan (%.3f with these candidates and overrides)",
				opt.TargetBits, (min+fixedCost)/totalParams)
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
	for j, i := range free {
		res.Choices[i] = opts[j][pick[j]].c
		res.Damage[i] = opts[j][pick[j]].damage
	}
	for _, d := range res.Damage {
		res.Total += d
	}
	res.AvgBits = AverageBits(res.Layers, res.Choices, opt.ScaleBits)
	p := &Plan{Version: 1, Source: "auto", ScaleBits: opt.ScaleBits, Int4Method: "best", TargetBits: opt.TargetBits,
		MaxDamage: opt.MaxDamage, AvgBits: res.AvgBits, PredictedDamage: res.Total, Metric: opt.Metric}
	p.Rules = append(p.Rules, opt.Overrides...)
	for _, i := range free {
		p.Rules = append(p.Rules, Rule{Pattern: res.Layers[i].Name, Scheme: res.Choices[i]})
	}
	return p, res, nil
}

func totalDamage(opts [][]option, pick []int) float64 {
	var d float64
	for j, k := range pick {
		d += opts[j][k].damage
	}
	return d
}

func defaultCandidates(s *Sensitivity) []Choice {
	set := map[string]Choice{"w16": FullPrecision}
	for _, l := range s.Layers {
		for name := range l.Damage {
			c, _ := ParseChoice(name) // validated
			set[c.String()] = c
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Choice, len(keys))
	for i, k := range keys {
		out[i] = set[k]
	}
	return out
}

// measuredDamage maps canonical scheme names to the chosen metric.
func measuredDamage(l LayerSensitivity, metric string) map[string]float64 {
	out := map[string]float64{"w16": 0}
	for name, d := range l.Damage {
		c, _ := ParseChoice(name)
		v := d.KL
		if metric == "ppl" {
			v = math.Max(d.PPLDelta, 0)
		}
		out[c.String()] = v
	}
	return out
}

func override(rules []Rule, name string) (Choice, bool, error) {
	for _, r := range rules {
		ok, err := path.Match(r.Pattern, name)
		if err != nil {
			return Choice{}, false, fmt.Errorf("override %q: %w", r.Pattern, err)
		}
		if ok {
			return r.Scheme, true, nil
		}
	}
	return Choice{}, false, nil
}

func minCost(opts [][]option) float64 {
	var s float64
	for _, o := range opts {
		m := math.Inf(1)
		for _, x := range o {
			m = math.Min(m, x.cost)
		}
		s += m
	}
	return s
}

// dpBudget solves the multiple-choice knapsack exactly on costs rounded up to multiples of
// budget/steps: dp[b] is the least damage of the layers so far using at most b units.
func dpBudget(orig [][]option, budget float64, steps int) []int {
	opts, budget := relative(orig, budget)
	unit := budget / float64(steps)
	if g := exactUnit(opts); g > 0 && budget/g <= float64(maxExactSteps(len(opts))) {
		// Every cost is a whole number of g-bit units: the programme is exact.
		unit, steps = g, int(math.Floor(budget/g+1e-9))
	}
	if unit <= 0 {
		unit = 1
	}
	units := func(c float64) int { return int(math.Ceil(c/unit - 1e-9)) }
	inf := math.Inf(1)
	dp := make([]float64, steps+1) // zero layers: zero damage at every budget
	next := make([]float64, steps+1)
	choice := make([][]int8, len(opts))
	for j, o := range opts {
		choice[j] = make([]int8, steps+1)
		for b := 0; b <= steps; b++ {
			best, arg := inf, int8(-1)
			for k, x := range o {
				u := units(x.cost)
				if u > b || dp[b-u] == inf {
					continue
				}
				if v := dp[b-u] + x.damage; v < best {
					best, arg = v, int8(k)
				}
			}
			next[b], choice[j][b] = best, arg
		}
		dp, next = next, dp
	}
	// The cheapest-fit fallback cannot be needed: Solve checked that the budget covers the
	// cheapest choices, and rounding up adds at most one unit per layer, so give the
	// programme that slack by walking back from the full budget.
	pick := make([]int, len(opts))
	b := steps
	if dp[b] == inf { // rounding made the exact minimum infeasible: take the cheapest plan
		return cheapest(opts)
	}
	for j := len(opts) - 1; j >= 0; j-- {
		k := int(choice[j][b])
		pick[j] = k
		b -= units(opts[j][k].cost)
	}
	// Rounding up may leave budget unused: spend it on damage-per-bit upgrades.
	spent := 0.0
	for j := range opts {
		spent += opts[j][pick[j]].cost
	}
	for {
		j, k, ok := upgrade(opts, pick, budget-spent)
		if !ok {
			return pick
		}
		spent += opts[j][k].cost - opts[j][pick[j]].cost
		pick[j] = k
	}
}

// exactUnit is the greatest common divisor of all (relative) integer costs, or 0.
func exactUnit(opts [][]option) float64 {
	var g int64
	for _, o := range opts {
		for _, x := range o {
			c := int64(x.cost)
			if float64(c) != x.cost {
				return 0
			}
			for c != 0 {
				g, c = c, g%c
			}
		}
	}
	return float64(g)
}

// maxExactSteps bounds the exact programme's table (layers x steps bytes) to ~64 MB.
func maxExactSteps(layers int) int { return max(100000, 64<<20/max(layers, 1)) }

// dpDamage finds the cheapest assignment whose summed damage is at most maxDamage: the
// same programme over cost units (up to the most expensive plan), then the least budget
// whose minimal damage fits.
func dpDamage(orig [][]option, maxDamage float64, steps int) ([]int, error) {
	opts, _ := relative(orig, 0)
	var top float64
	for _, o := range opts {
		m := 0.0
		for _, x := range o {
			m = math.Max(m, x.cost)
		}
		top += m
	}
	unit := top / float64(steps)
	if g := exactUnit(opts); g > 0 && top/g <= float64(maxExactSteps(len(opts))) {
		unit, steps = g, int(math.Round(top/g))
	}
	if unit <= 0 {
		unit = 1
	}
	units := func(c float64) int { return int(math.Ceil(c/unit - 1e-9)) }
	inf := math.Inf(1)
	size := steps + len(opts) + 1 // rounding up adds at most one unit per layer
	dp := make([]float64, size)
	next := make([]float64, size)
	choice := make([][]int8, len(opts))
	for j, o := range opts {
		choice[j] = make([]int8, size)
		for b := 0; b < size; b++ {
			best, arg := inf, int8(-1)
			for k, x := range o {
				u := units(x.cost)
				if u > b || dp[b-u] == inf {
					continue
				}
				if v := dp[b-u] + x.damage; v < best {
					best, arg = v, int8(k)
				}
			}
			next[b], choice[j][b] = best, arg
		}
		dp, next = next, dp
	}
	for b := 0; b < size; b++ {
		if dp[b] <= maxDamage+1e-15 {
			pick := make([]int, len(opts))
			for j := len(opts) - 1; j >= 0; j-- {
				k := int(choice[j][b])
				pick[j] = k
				b -= units(opts[j][k].cost)
			}
			return pick, nil
		}
	}
	return nil, fmt.Errorf("plan: no assignment keeps the predicted damage within %g (the least possible is %g)", maxDamage, dp[size-1])
}

// relative subtracts each layer's cheapest cost from its options (and their sum from the
// budget), so the programme's resolution is spent on the part of the budget that is
// actually being chosen, not on the bits every plan pays.
func relative(opts [][]option, budget float64) ([][]option, float64) {
	out := make([][]option, len(opts))
	for j, o := range opts {
		base := math.Inf(1)
		for _, x := range o {
			base = math.Min(base, x.cost)
		}
		out[j] = make([]option, len(o))
		for k, x := range o {
			out[j][k] = option{c: x.c, cost: x.cost - base, damage: x.damage}
		}
		budget -= base
	}
	return out, math.Max(budget, 0)
}

func cheapest(opts [][]option) []int {
	pick := make([]int, len(opts))
	for j, o := range opts {
		for k, x := range o {
			c := o[pick[j]]
			if x.cost < c.cost || (x.cost == c.cost && x.damage < c.damage) {
				pick[j] = k
			}
		}
	}
	return pick
}

// upgrade finds the move with the largest damage reduction per extra bit among those
// costing at most room; ok is false when none helps.
func upgrade(opts [][]option, pick []int, room float64) (j, k int, ok bool) {
	bestRatio := 0.0
	for jj, o := range opts {
		cur := o[pick[jj]]
		for kk, x := range o {
			dc, dd := x.cost-cur.cost, cur.damage-x.damage
			if dc <= 0 || dd <= 0 || dc > room+1e-9 {
				continue
			}
			if r := dd / dc; r > bestRatio {
				bestRatio, j, k, ok = r, jj, kk, true
			}
		}
	}
	return j, k, ok
}

// greedyBudget starts every layer at its cheapest choice and repeatedly takes the upgrade
// with the most damage saved per extra bit that still fits the budget.
func greedyBudget(opts [][]option, budget float64) []int {
	pick := cheapest(opts)
	spent := 0.0
	for j, o := range opts {
		spent += o[pick[j]].cost
	}
	for {
		j, k, ok := upgrade(opts, pick, budget-spent)
		if !ok {
			return pick
		}
		spent += opts[j][k].cost - opts[j][pick[j]].cost
		pick[j] = k
	}
}

// greedyDamage upgrades by damage per bit until the summed damage is within maxDamage.
func greedyDamage(opts [][]option, maxDamage float64) ([]int, error) {
	pick := cheapest(opts)
	total := 0.0
	for j, o := range opts {
		total += o[pick[j]].damage
	}
	for total > maxDamage+1e-15 {
		j, k, ok := upgrade(opts, pick, math.Inf(1))
		if !ok {
			return nil, fmt.Errorf("plan: no assignment keeps the predicted damage within %g (greedy reached %g)", maxDamage, total)
		}
		total += opts[j][k].damage - opts[j][pick[j]].damage
		pick[j] = k
	}
	return pick, nil
}
