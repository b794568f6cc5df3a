package target

import (
	"fmt"
	"slices"
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
	// Blocks are the llama.cpp block formats the kernel takes (recipes named q4_k, q8_0,
	// ...); a kernel with Blocks takes no other quantized recipe, one without takes none.
	Blocks []quant.Block
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
