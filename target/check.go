package target

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

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
		why := k.refuseBlock(r.Block)
		if why == "" {
			why = k.refuse(s, u.Out, u.In, d)
		}
		if why == "" {
			return nil
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s [%s]", k.Name, why, k.Ref))
	}
	if reasons == nil {
		reasons = []string{fmt.Sprintf("no %s kernel takes %s", t.Name, actKind(r.Act))}
	}
	return &Refusal{Target: t.Name, Layer: u.Describe(layers), Scheme: quant.Recipe{Weight: s, Act: r.Act, Block: r.Block}.String(), Reasons: reasons}
}

// refuseBlock says why k does not store a recipe of block format b (BlockNone: autoq's
// own layout), or "".
func (k *Kernel) refuseBlock(b quant.Block) string {
	switch {
	case b == quant.BlockNone && k.Blocks != nil:
		return fmt.Sprintf("only the block formats %s are stored (w4g32 is q4_0, w4g32a q4_1, w8g32 q8_0 ...)", blockNames(k.Blocks))
	case b != quant.BlockNone && !slices.Contains(k.Blocks, b):
		if k.Blocks == nil {
			return fmt.Sprintf("%s is a llama.cpp block format (the gguf target), not %s", b, k.Format)
		}
		return fmt.Sprintf("block format %s is not taken (only %s)", b, blockNames(k.Blocks))
	}
	return ""
}

func blockNames(v []quant.Block) string {
	s := make([]string, len(v))
	for i, b := range v {
		s[i] = b.String()
	}
	return strings.Join(s, ", ")
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
