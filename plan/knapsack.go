package plan

import (
	"fmt"
	"math"
)

// The multiple-choice knapsack behind Solve: each layer has options (cost in bits, damage);
// pick one per layer.

func totalDamage(opts [][]option, pick []int) float64 {
	var d float64
	for j, k := range pick {
		d += opts[j][k].damage
	}
	return d
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
	dp, choice := knapsack(opts, units, steps+1)
	// The cheapest-fit fallback cannot be needed: Solve checked that the budget covers the
	// cheapest choices, and rounding up adds at most one unit per layer, so give the
	// programme that slack by walking back from the full budget.
	if dp[steps] == inf { // rounding made the exact minimum infeasible: take the cheapest plan
		return cheapest(opts)
	}
	// Rounding up may leave budget unused: spend it on damage-per-bit upgrades.
	return upgradeWithin(opts, walkBack(opts, choice, units, steps), budget)
}

// knapsack is the dynamic programme over budgets of 0 to size-1 units (a cost c takes
// units(c)): dp[b] is the least damage of one option per layer within b units (+Inf when
// none fits), choice[j][b] layer j's option in that solution.
func knapsack(opts [][]option, units func(float64) int, size int) (dp []float64, choice [][]int8) {
	inf := math.Inf(1)
	dp = make([]float64, size) // zero layers: zero damage at every budget
	next := make([]float64, size)
	choice = make([][]int8, len(opts))
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
	return dp, choice
}

// walkBack reads the options of knapsack's solution at budget b out of choice.
func walkBack(opts [][]option, choice [][]int8, units func(float64) int, b int) []int {
	pick := make([]int, len(opts))
	for j := len(opts) - 1; j >= 0; j-- {
		k := int(choice[j][b])
		pick[j] = k
		b -= units(opts[j][k].cost)
	}
	return pick
}

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

func maxExactSteps(layers int) int { return max(100000, 64<<20/max(layers, 1)) }

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
	size := steps + len(opts) + 1 // rounding up adds at most one unit per layer
	dp, choice := knapsack(opts, units, size)
	for b := 0; b < size; b++ {
		if dp[b] <= maxDamage+1e-15 {
			return walkBack(opts, choice, units, b), nil
		}
	}
	return nil, fmt.Errorf("plan: no assignment keeps the predicted damage within %g (the least possible is %g)", maxDamage, dp[size-1])
}

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

func greedyBudget(opts [][]option, budget float64) []int {
	return upgradeWithin(opts, cheapest(opts), budget)
}

// upgradeWithin takes upgrades of pick, the best damage saved per bit first, while the
// total cost stays within budget.
func upgradeWithin(opts [][]option, pick []int, budget float64) []int {
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
