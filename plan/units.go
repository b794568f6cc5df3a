package plan

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/autoq/autoq/quant"
)

// unit is what the planner assigns one scheme to: a layer, or a group of layers.
type unit struct {
	name    string // the layer's name, or the group's
	group   bool
	members []int
}

// planUnits turns the groups into units and every other layer into its own, ordered by
// their first layer (so without groups the units are the layers, in order).
func planUnits(s *Sensitivity, groups []Group) ([]unit, error) {
	n := len(s.Layers)
	groupOf := make([]int, n) // 1 + group index
	for g, gr := range groups {
		if len(gr.Members) == 0 {
			return nil, fmt.Errorf("plan: group %q has no members", gr.Name)
		}
		for _, i := range gr.Members {
			if i < 0 || i >= n {
				return nil, fmt.Errorf("plan: group %q: layer index %d out of range", gr.Name, i)
			}
			if groupOf[i] != 0 {
				return nil, fmt.Errorf("plan: layer %q is in groups %q and %q", s.Layers[i].Name, groups[groupOf[i]-1].Name, gr.Name)
			}
			groupOf[i] = g + 1
		}
	}
	var units []unit
	for i, l := range s.Layers {
		switch g := groupOf[i]; {
		case g == 0:
			units = append(units, unit{name: l.Name, members: []int{i}})
		case slices.Min(groups[g-1].Members) == i:
			gr := groups[g-1]
			units = append(units, unit{name: describeGroup(s, gr), group: true, members: slices.Clone(gr.Members)})
		}
	}
	return units, nil
}

// describeGroup is "NAME (q_proj, k_proj, v_proj)": the group and its members' last name
// parts.
func describeGroup(s *Sensitivity, g Group) string {
	var m []string
	for _, i := range g.Members {
		n := s.Layers[i].Name
		m = append(m, n[strings.LastIndex(n, ".")+1:])
	}
	return fmt.Sprintf("the fused group %s (%s)", g.Name, strings.Join(m, ", "))
}

// unitOverride returns the scheme the overrides fix for the whole unit, if any. An
// override that reaches only some members of a group, or gives them different schemes,
// would split the group: that is an error naming the group and the overrides.
func unitOverride(s *Sensitivity, u unit, rules []Rule) (quant.Recipe, bool, error) {
	var fixed []quant.Recipe
	var by []string
	var missed []string
	for _, i := range u.members {
		name := s.Layers[i].Name
		r, pattern, ok, err := override(rules, name)
		if err != nil {
			return quant.Recipe{}, false, err
		}
		if !ok {
			missed = append(missed, name)
			continue
		}
		fixed = append(fixed, r)
		by = append(by, fmt.Sprintf("%s=%s ('%s=%s')", name, r, pattern, r))
	}
	if len(fixed) == 0 {
		return quant.Recipe{}, false, nil
	}
	split := len(missed) > 0
	for _, r := range fixed[1:] {
		split = split || r != fixed[0]
	}
	if split {
		msg := fmt.Sprintf("plan: overrides would split %s, which the target loads as one layer with one scheme: %s",
			u.name, strings.Join(by, ", "))
		if len(missed) > 0 {
			msg += fmt.Sprintf(", but no override covers %s", strings.Join(missed, ", "))
		}
		return quant.Recipe{}, false, fmt.Errorf("%s; override every member with the same scheme", msg)
	}
	return fixed[0], true, nil
}

// override returns the scheme and pattern of the first rule matching name.
func override(rules []Rule, name string) (quant.Recipe, string, bool, error) {
	for _, r := range rules {
		ok, err := path.Match(r.Pattern, name)
		if err != nil {
			return quant.Recipe{}, "", false, fmt.Errorf("override %q: %w", r.Pattern, err)
		}
		if ok {
			return r.Scheme, r.Pattern, true, nil
		}
	}
	return quant.Recipe{}, "", false, nil
}

// unitOptions lists the candidates the unit may take: measured on every member (w16 needs
// no measurement) and allowed by the target. The cost is the members' summed exact
// storage, the damage their summed damage. refused holds the target's reasons for the
// candidates it refused.
func unitOptions(s *Sensitivity, u unit, cands []quant.Recipe, measured []map[string]float64, opt Options) (o []option, refused []string) {
	for _, c := range cands {
		var cost int64
		var damage float64
		ok := true
		for _, i := range u.members {
			d, has := measured[i][c.String()]
			if !has && !c.Full {
				ok = false
				break
			}
			l := s.Layers[i]
			cost += c.CostBits(l.Rows, l.Cols, opt.ScaleBits)
			damage += d
		}
		if !ok {
			continue
		}
		if opt.Allow != nil {
			if err := opt.Allow(u.members, c); err != nil {
				refused = append(refused, err.Error())
				continue
			}
		}
		o = append(o, option{c: c, cost: float64(cost), icost: cost, damage: damage})
	}
	return o, refused
}
