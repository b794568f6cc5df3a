package eval

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// Spec is a uniform fake-quantization recipe under the name the user gave it (reports
// show "w8a8s" as typed, while quant.Recipe.String is the canonical "w8ca8s"): every
// pluggable linear layer gets the same recipe.
type Spec struct {
	Name string
	quant.Recipe
}

// ParseSpec reads a recipe name (quant.ParseRecipe) for a uniform evaluation; w16 is
// refused (it is the reference every scheme is compared with).
func ParseSpec(s string) (Spec, error) {
	r, err := quant.ParseRecipe(s)
	if err != nil {
		return Spec{}, err
	}
	if r.Full {
		return Spec{}, fmt.Errorf("scheme %q: full precision is the reference row, not a scheme to compare", s)
	}
	return Spec{Name: strings.ToLower(strings.TrimSpace(s)), Recipe: r}, nil
}

// Apply replaces every linear layer of m by its fake-quantized version: weights quantized
// with quant.Quantize (search opt) and dequantized. amax gives each layer's calibrated
// activation threshold for static activation quantization (keyed by linear name).
func Apply(m *model.Model, sp Spec, opt quant.SearchOptions, amax map[string]float32) error {
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		deq, err := FakeQuantizeWeight(name, w.ToF32(), w.Shape[0], w.Shape[1], sp.Weight, opt)
		if err != nil {
			return fmt.Errorf("quantize %s as %s: %w", name, sp.Name, err)
		}
		var bias []float32
		if b := m.Weight(name + ".bias"); b != nil {
			bias = b.F32()
		}
		var a float32
		if sp.Act == quant.ActStatic {
			var ok bool
			if a, ok = amax[name]; !ok {
				return fmt.Errorf("scheme %s: no calibrated activation amax for %s", sp.Name, name)
			}
		}
		fq, err := model.NewFakeQuantDequantized(name, deq, w.Shape[0], w.Shape[1], bias, sp.Act, a)
		if err != nil {
			return err
		}
		if err := m.SetLinear(name, fq); err != nil {
			return err
		}
	}
	return nil
}

// FakeQuantizeWeight returns the dequantized weights of w [rows, cols] under scheme s,
// fitted to the width with quant.FitCols (stories260K's down_proj has 172 inputs: groups of
// 32 become groups of 43), the rule `autoq quantize`, GPTQ, the planner and the export use.
func FakeQuantizeWeight(name string, w []float32, rows, cols int, s quant.Scheme, opt quant.SearchOptions) ([]float32, error) {
	q, err := quant.Quantize(name, w, rows, cols, s.FitCols(cols), opt)
	if err != nil {
		return nil, err
	}
	return quant.Dequantize(q), nil
}

// ApplyExport plugs the quantized layers of an export (package export's Read) into m as
// fake-quantized layers with exactly the stored levels, scales and activation settings.
// Layers the export keeps in full precision stay as they are.
func ApplyExport(m *model.Model, ld *export.Loaded) (int, error) {
	for _, l := range ld.Layers {
		if m.Linear(l.Name) == nil {
			return 0, fmt.Errorf("export %s: quantized layer %s is not a linear layer of the model", ld.Dir, l.Name)
		}
		var bias []float32
		if b := m.Weight(l.Name + ".bias"); b != nil {
			bias = b.F32()
		}
		act, amax := quant.ActNone, float32(0)
		if l.Act != nil {
			if l.Act.Dynamic {
				act = quant.ActDynamic
			} else {
				act, amax = quant.ActStatic, l.Act.Amax
			}
		}
		fq, err := model.NewFakeQuant(l.Q, bias, act, amax)
		if err != nil {
			return 0, err
		}
		if err := m.SetLinear(l.Name, fq); err != nil {
			return 0, fmt.Errorf("export %s: %w", ld.Dir, err)
		}
	}
	return len(ld.Layers), nil
}
