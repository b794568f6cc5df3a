package autoquant

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/target"
	"github.com/autoq/autoq/tensor"
)

// DefaultTarget is the export target of compressed-tensors exports unless told otherwise.
const DefaultTarget = "vllm"

// ServeDType is the dtype a model's export is served in, and so the dtype its weight-only
// scales are stored in: a 16-bit model's own; an F32 model is exported for F16 (its
// config.json gets torch_dtype float16, because vLLM serves a float32 config in bfloat16
// on GPUs that have it, vllm/config/model.py _resolve_auto_dtype, which would round F16
// scales and rule out F16-only kernels).
func ServeDType(model tensor.DType) tensor.DType {
	if model == tensor.F16 || model == tensor.BF16 {
		return model
	}
	return tensor.F16
}

// torchDTypes is the config.json (torch_dtype) spelling of the 16-bit dtypes; every other
// dtype is written, and read, as float32.
var torchDTypes = map[tensor.DType]string{tensor.F16: "float16", tensor.BF16: "bfloat16"}

// torchDType is the config.json spelling of a dtype.
func torchDType(d tensor.DType) string {
	if s, ok := torchDTypes[d]; ok {
		return s
	}
	return "float32"
}

// exportTarget is a target resolved for one model: its table, the dtype the model is
// served in, and the model's linear layers grouped as the engine builds them.
type exportTarget struct {
	t      *target.Target
	warn   *target.Target // the target whose refusals are warnings ("any": vllm)
	serve  tensor.DType
	layers []target.Layer
	units  []target.Unit
	unitAt map[int]int // first member index -> index into units
}

// openTarget resolves name for layers served in serve.
func openTarget(name string, serve tensor.DType, layers []plan.Layer) (*exportTarget, error) {
	if name == "" {
		name = DefaultTarget
	}
	t, err := target.Get(name)
	if err != nil {
		return nil, usagef("--target: %v", err)
	}
	et := &exportTarget{t: t, serve: serve, unitAt: map[int]int{}}
	if t.WarnAs != "" {
		if et.warn, err = target.Get(t.WarnAs); err != nil {
			return nil, err
		}
	}
	for _, l := range layers {
		et.layers = append(et.layers, target.Layer{Name: l.Name, Rows: l.Rows, Cols: l.Cols})
	}
	if et.units, err = t.Units(et.layers); err != nil {
		return nil, err
	}
	for i, u := range et.units {
		et.unitAt[u.Members[0]] = i
	}
	return et, nil
}

// planOptions sets the planner's groups and per-unit check (indices are the layers' given
// to openTarget, in that order).
func (et *exportTarget) planOptions(o *plan.Options) {
	o.Groups = nil
	for _, u := range et.units {
		if u.Fused != nil {
			o.Groups = append(o.Groups, plan.Group{Name: u.Name, Members: slices.Clone(u.Members)})
		}
	}
	o.Allow = func(members []int, r quant.Recipe) error {
		i, ok := et.unitAt[members[0]]
		if !ok || !slices.Equal(et.units[i].Members, members) {
			return fmt.Errorf("target %s: layers %v are not one unit", et.t.Name, members)
		}
		return et.t.Check(et.layers, et.units[i], r, et.serve)
	}
}

// loadable keeps the candidates some unit can take, and says why the others are dropped
// (one line each: the first unit's refusal).
func (et *exportTarget) loadable(cands []quant.Recipe) (keep []quant.Recipe, dropped []string) {
	for _, c := range cands {
		var first error
		for _, u := range et.units {
			err := et.t.Check(et.layers, u, c, et.serve)
			if err == nil {
				first = nil
				break
			}
			if first == nil {
				first = err
			}
		}
		if first == nil {
			keep = append(keep, c)
		} else {
			dropped = append(dropped, fmt.Sprintf("%s (e.g. %v)", c, first))
		}
	}
	return keep, dropped
}

// fullOnly explains a plan the budget cannot reach: the units no candidate but w16 can
// be loaded as, with the first one's refusal of the candidate most likely to load (the
// widest, symmetric).
func (et *exportTarget) fullOnly(cands []quant.Recipe) string {
	var names []string
	var why error
	for _, u := range et.units {
		var refusal error
		var best quant.Recipe
		ok := false
		for _, c := range cands {
			if c.Full {
				continue
			}
			err := et.t.Check(et.layers, u, c, et.serve)
			if err == nil {
				ok = true
				break
			}
			if refusal == nil || c.Weight.Bits > best.Weight.Bits || (c.Weight.Bits == best.Weight.Bits && c.Weight.Symmetric && !best.Weight.Symmetric) {
				refusal, best = err, c
			}
		}
		if !ok {
			names = append(names, u.Describe(et.layers))
			if why == nil {
				why = refusal
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	shown := names
	if len(shown) > 3 {
		shown = append(shown[:3:3], fmt.Sprintf("%d more", len(names)-3))
	}
	served := fmt.Sprintf(" (the model served in %s)", et.serve)
	if et.t.Name == GGUFTarget {
		served = ""
	}
	msg := fmt.Sprintf("%s can load %d of %d layers only in full precision%s: %s",
		et.t.Name, len(names), len(et.units), served, strings.Join(shown, ", "))
	if why != nil {
		msg += "; for example: " + why.Error()
	}
	return msg
}

// minBits is the cheapest average bits per weight the target allows with cands (w16
// where nothing else loads), fixed layers aside; refused says whether the target ruled
// out any candidate somewhere.
func (et *exportTarget) minBits(cands []quant.Recipe, scaleBits int) (min float64, refused bool) {
	var bits, params float64
	for _, u := range et.units {
		best := int64(-1)
		for _, c := range append([]quant.Recipe{quant.FullPrecision}, cands...) {
			if et.t.Check(et.layers, u, c, et.serve) != nil {
				refused = true
				continue
			}
			var cost int64
			for _, i := range u.Members {
				cost += c.CostBits(et.layers[i].Rows, et.layers[i].Cols, scaleBits)
			}
			if best < 0 || cost < best {
				best = cost
			}
		}
		bits += float64(best)
		for _, i := range u.Members {
			params += float64(et.layers[i].Rows * et.layers[i].Cols)
		}
	}
	return bits / params, refused
}

// checkPlan checks the scheme of every layer against the target: the problems are an
// error for a strict target, warnings (logged) for "any".
func (et *exportTarget) checkPlan(env Env, choices []quant.Recipe) error {
	strict := et.warn == nil
	t := et.t
	if !strict {
		t = et.warn
	}
	problems, err := t.CheckPlan(et.layers, choices, et.serve)
	if err != nil {
		return err
	}
	if len(problems) == 0 {
		return nil
	}
	if !strict {
		for _, p := range problems {
			env.logf("warning: %v\n", p)
		}
		return nil
	}
	lines := groupByDecoderLayer(problems)
	if t.Name == GGUFTarget { // no serving dtype, and "any" writes compressed-tensors
		return fmt.Errorf("the plan cannot be exported for gguf (llama.cpp):\n%s", strings.Join(lines, "\n"))
	}
	return fmt.Errorf("the plan cannot be exported for %s (served in %s):\n%s\n(--target any writes it anyway, with these as warnings)",
		t.Name, et.serve, strings.Join(lines, "\n"))
}

var decoderLayer = regexp.MustCompile(`\blayers\.([0-9]+)\.`)

// groupByDecoderLayer prints problems that differ only in the decoder layer number once,
// with the layers they occur in: "  ... model.layers.N.mlp.down_proj ... (layers 0-4)".
func groupByDecoderLayer(problems []error) []string {
	var keys []string
	at := map[string][]string{}
	for _, p := range problems {
		msg := p.Error()
		var ids []string
		for _, m := range decoderLayer.FindAllStringSubmatch(msg, -1) {
			ids = append(ids, m[1])
		}
		key := decoderLayer.ReplaceAllString(msg, "layers.N.")
		if len(ids) == 0 || !allSame(ids) {
			key, ids = msg, nil
		}
		if _, ok := at[key]; !ok {
			keys = append(keys, key)
		}
		if len(ids) > 0 {
			at[key] = append(at[key], ids[0])
		} else {
			at[key] = nil
		}
	}
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = "  " + k
		if ids := at[k]; len(ids) > 0 {
			lines[i] += fmt.Sprintf(" (N = %s)", strings.Join(ids, ", "))
		}
	}
	return lines
}

func allSame(v []string) bool {
	for _, x := range v[1:] {
		if x != v[0] {
			return false
		}
	}
	return true
}

// checkInputScales: an engine that runs a fused group with its members' largest static
// activation scale (vLLM) needs them equal to run what was evaluated.
func (et *exportTarget) checkInputScales(env Env, ql []*Layer) error {
	t := et.t
	if et.warn != nil {
		t = et.warn
	}
	if !t.FusedInputScaleMax {
		return nil
	}
	amax := map[string]float32{}
	for _, l := range ql {
		if l.Act != nil && !l.Act.Dynamic {
			amax[l.Name] = l.Act.Amax
		}
	}
	for _, u := range et.units {
		if u.Fused == nil {
			continue
		}
		first, ok := amax[et.layers[u.Members[0]].Name]
		for _, i := range u.Members[1:] {
			a, ok2 := amax[et.layers[i].Name]
			if !ok || !ok2 || a == first {
				continue
			}
			err := fmt.Errorf("%s runs %s with its members' largest input_scale, but their static activation thresholds differ (%s %v, %s %v)",
				t.Name, u.Describe(et.layers), et.layers[u.Members[0]].Name, first, et.layers[i].Name, a)
			if et.warn != nil {
				env.logf("warning: %v\n", err)
				break
			}
			return err
		}
	}
	return nil
}
