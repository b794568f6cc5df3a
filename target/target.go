package target

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Kernel is one way an engine runs a linear layer: the schemes it takes and the shapes it
// needs. A zero limit or a nil list is no rule.
type Kernel struct {
	Name   string
	Source string // the files the rules below were read from (docs/EXPORT.md)
	Ref    string // the same, short, for messages
	// Format is how the layer is stored for this kernel (compressed-tensors'
	// "pack-quantized" or "int-quantized"; a gguf target names its block types).
	Format string
	Acts   []quant.ActMode // activation modes
	// SymBits are the weight widths taken without zero points, AsymBits those taken with.
	SymBits, AsymBits []int
	Granularities     []quant.Granularity
	// GroupSizes are the group sizes taken, -1 standing for per channel (vLLM's
	// convention); GroupMultiple requires the group (per channel: the row) to be a
	// multiple of it.
	GroupSizes    []int
	GroupMultiple int
	// OutMultiple and InMultiple constrain the output and input features of the layer the
	// engine builds (for a fused group: the members' summed outputs); OutPack and InPack
	// require them to divide by the packing factor 32/bits.
	OutMultiple, InMultiple int
	OutPack, InPack         bool
	DTypes                  []tensor.DType // dtypes the model may be served in
}

// Fused is a set of layers an engine loads as one: Members are name suffixes (after
// "model.layers.N.") and Name is the fused layer's suffix.
type Fused struct {
	Name    string
	Members []string
	Source  string
	Ref     string // short Source, for messages
}

// Target is one engine's capability table.
type Target struct {
	Name    string
	Engine  string // what loads the export
	Kernels []Kernel
	Fused   []Fused
	// FusedSource is why a fused group must share a scheme.
	FusedSource string
	// ScalesInServeDType: the engine keeps weight-only scales in the dtype the model is
	// served in, so they must be stored in that dtype to be kept exactly.
	ScalesInServeDType bool
	// FusedInputScaleMax: a fused group with static activation scales runs with the
	// largest of its members' (so they must be equal to be what was evaluated).
	FusedInputScaleMax bool
	// WarnAs names the target whose refusals this one reports as warnings ("any").
	WarnAs string
}

// Layer is a linear layer's name and shape ([Rows=out, Cols=in]).
type Layer struct {
	Name       string
	Rows, Cols int
}

// Unit is what an engine builds as one linear layer: one layer, or a fused group.
type Unit struct {
	Name    string // the layer's, or the fused layer's (model.layers.0.self_attn.qkv_proj)
	Fused   *Fused // nil for a single layer
	Members []int  // indices into the layers given to Units, in order
	Out, In int    // output features (summed over the members) and input features
}

// Describe names the unit for messages: "model.layers.0.mlp.down_proj", or the fused
// name with its members.
func (u Unit) Describe(layers []Layer) string {
	if u.Fused == nil {
		return u.Name
	}
	var m []string
	for _, i := range u.Members {
		n := layers[i].Name
		m = append(m, n[strings.LastIndex(n, ".")+1:])
	}
	return fmt.Sprintf("%s (%s)", u.Name, strings.Join(m, ", "))
}

// Get returns the target called name.
func Get(name string) (*Target, error) {
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("unknown target %q (want %s)", name, strings.Join(Names(), ", "))
}

// Names lists the targets.
func Names() []string {
	var out []string
	for _, t := range all {
		out = append(out, t.Name)
	}
	return out
}

// Units partitions layers into what the engine builds: each fused group whose members
// are all present becomes one unit, every other layer its own, in the order of their
// first layer. Fused members must share their input width.
func (t *Target) Units(layers []Layer) ([]Unit, error) {
	index := make(map[string]int, len(layers))
	for i, l := range layers {
		index[l.Name] = i
	}
	groupOf := make([]int, len(layers)) // 1 + index into groups, 0 for none
	var groups []Unit
	for _, l := range layers {
		for fi := range t.Fused {
			f := &t.Fused[fi]
			prefix, ok := strings.CutSuffix(l.Name, f.Members[0])
			if !ok || (prefix != "" && !strings.HasSuffix(prefix, ".")) {
				continue
			}
			u := Unit{Name: prefix + f.Name, Fused: f}
			for _, m := range f.Members {
				j, ok := index[prefix+m]
				if !ok || groupOf[j] != 0 {
					u.Members = nil
					break
				}
				u.Members = append(u.Members, j)
			}
			if len(u.Members) != len(f.Members) {
				continue
			}
			u.In = l.Cols
			for _, j := range u.Members {
				if layers[j].Cols != u.In {
					return nil, fmt.Errorf("%s: fused layer %s needs one input width, but %s has %d inputs and %s %d",
						t.Name, u.Name, l.Name, l.Cols, layers[j].Name, layers[j].Cols)
				}
				u.Out += layers[j].Rows
				groupOf[j] = len(groups) + 1
			}
			groups = append(groups, u)
		}
	}
	var units []Unit
	for i, l := range layers {
		switch g := groupOf[i]; {
		case g == 0:
			units = append(units, Unit{Name: l.Name, Members: []int{i}, Out: l.Rows, In: l.Cols})
		case slices.Min(groups[g-1].Members) == i:
			units = append(units, groups[g-1])
		}
	}
	return units, nil
}

// Refusal is a unit the target cannot load with a scheme, and why (one reason per kernel
// that runs layers of that kind).
type Refusal struct {
	Target  string
	Layer   string // the unit, described
	Scheme  string
	Reasons []string
}

func (e *Refusal) Error() string {
	return fmt.Sprintf("%s cannot load %s as %s: %s", e.Target, e.Layer, e.Scheme, strings.Join(e.Reasons, "; "))
}

// Check returns nil when the target loads unit u (of layers) with recipe r on a model
// served in dtype d, else a *Refusal naming each kernel's first rule that fails.
func (t *Target) Check(layers []Layer, u Unit, r quant.Recipe, d tensor.DType) error {
	if r.Full {
		return nil
	}
	s := r.For(u.In)
	var reasons []string
	for _, k := range t.Kernels {
		if !slices.Contains(k.Acts, r.Act) {
			continue
		}
		why := k.refuse(s, u.Out, u.In, d)
		if why == "" {
			return nil
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s [%s]", k.Name, why, k.Ref))
	}
	if reasons == nil {
		reasons = []string{fmt.Sprintf("no %s kernel takes %s", t.Name, actKind(r.Act))}
	}
	return &Refusal{Target: t.Name, Layer: u.Describe(layers), Scheme: quant.Recipe{Weight: s, Act: r.Act}.String(), Reasons: reasons}
}

// refuse returns the first rule of k that scheme s on an [out, in] layer served in d
// breaks, or "".
func (k *Kernel) refuse(s quant.Scheme, out, in int, d tensor.DType) string {
	if !slices.Contains(k.Granularities, s.Granularity) {
		return fmt.Sprintf("per-%s weights are not taken (only %s)", s.Granularity, granularities(k.Granularities))
	}
	if s.Symmetric && !slices.Contains(k.SymBits, s.Bits) {
		return fmt.Sprintf("%d-bit symmetric weights are not taken (widths %s)", s.Bits, ints(k.SymBits))
	}
	if !s.Symmetric && !slices.Contains(k.AsymBits, s.Bits) {
		return fmt.Sprintf("%d-bit weights with zero points are not taken (widths %s)", s.Bits, ints(k.AsymBits))
	}
	group := -1
	if s.Granularity == quant.PerGroup {
		group = s.GroupSize
	}
	if k.GroupSizes != nil && !slices.Contains(k.GroupSizes, group) {
		return fmt.Sprintf("group size %d is not taken (sizes %s; -1 = per channel)", group, ints(k.GroupSizes))
	}
	if k.GroupMultiple > 0 && s.Granularity != quant.PerTensor {
		g, what := group, "group size"
		if g < 0 {
			g, what = in, "row length"
		}
		if g%k.GroupMultiple != 0 {
			return fmt.Sprintf("%s %d is not a multiple of %d", what, g, k.GroupMultiple)
		}
	}
	pack := 32 / s.Bits
	switch {
	case k.OutMultiple > 0 && out%k.OutMultiple != 0:
		return fmt.Sprintf("output features %d are not a multiple of %d", out, k.OutMultiple)
	case k.InMultiple > 0 && in%k.InMultiple != 0:
		return fmt.Sprintf("input features %d are not a multiple of %d", in, k.InMultiple)
	case k.OutPack && out%pack != 0:
		return fmt.Sprintf("output features %d are not a multiple of the packing factor %d", out, pack)
	case k.InPack && in%pack != 0:
		return fmt.Sprintf("input features %d are not a multiple of the packing factor %d", in, pack)
	}
	if k.DTypes != nil && !slices.Contains(k.DTypes, d) {
		return fmt.Sprintf("runs only with %s activations (the model is served in %s)", dtypes(k.DTypes), d)
	}
	return ""
}

// CheckPlan checks a whole assignment (choices[i] for layers[i]): fused groups whose
// members differ, then every unit's scheme. It returns one error per problem, in layer
// order; none means the target loads the plan.
func (t *Target) CheckPlan(layers []Layer, choices []quant.Recipe, d tensor.DType) ([]error, error) {
	units, err := t.Units(layers)
	if err != nil {
		return nil, err
	}
	var out []error
	for _, u := range units {
		first := choices[u.Members[0]]
		same := true
		for _, i := range u.Members[1:] {
			same = same && choices[i] == first
		}
		if !same {
			var parts []string
			for _, i := range u.Members {
				parts = append(parts, fmt.Sprintf("%s %s", layers[i].Name, choices[i]))
			}
			out = append(out, fmt.Errorf("%s loads %s as one layer, so its members must share one scheme, but the plan gives %s [%s]",
				t.Name, u.Describe(layers), strings.Join(parts, ", "), u.Fused.Ref))
			continue
		}
		if err := t.Check(layers, u, first, d); err != nil {
			out = append(out, err)
		}
	}
	return out, nil
}

func actKind(a quant.ActMode) string {
	switch a {
	case quant.ActStatic:
		return "layers with static int8 activations"
	case quant.ActDynamic:
		return "layers with per-token int8 activations"
	}
	return "weight-only quantized layers"
}

func ints(v []int) string {
	if len(v) == 0 {
		return "none"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return "{" + strings.Join(s, ", ") + "}"
}

func granularities(v []quant.Granularity) string {
	s := make([]string, len(v))
	for i, g := range v {
		s[i] = "per-" + g.String()
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func dtypes(v []tensor.DType) string {
	s := make([]string, len(v))
	for i, d := range v {
		s[i] = d.String()
	}
	return strings.Join(s, " or ")
}
