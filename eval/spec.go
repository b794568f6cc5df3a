package eval

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// Spec is a uniform fake-quantization recipe: every pluggable linear layer gets the same
// weight scheme and activation mode.
type Spec struct {
	Name   string
	Weight quant.Scheme
	Act    model.ActQuant
}

var specRE = regexp.MustCompile(`^w([48])(c|t|g[0-9]+)?(a)?(a8s?)?$`)

// ParseSpec reads names such as:
//
//	w8        int8 weights, symmetric, per output channel (c: per channel, t: per tensor)
//	w4g32     int4 weights, symmetric, groups of 32 inputs
//	w4g32a    ... asymmetric (trailing a)
//	w8a8      int8 weights per channel + int8 activations, dynamic per token
//	w8a8s     ... with static per-tensor activation scales (needs calibrated amax values)
//
// Without a granularity letter the weights are per channel.
func ParseSpec(s string) (Spec, error) {
	m := specRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return Spec{}, fmt.Errorf("unknown scheme %q (examples: w8, w8a8, w8a8s, w4g32, w4g128a, w8t)", s)
	}
	bits, _ := strconv.Atoi(m[1])
	sc := quant.Scheme{Bits: bits, Symmetric: m[3] == "", Granularity: quant.PerChannel}
	switch {
	case m[2] == "t":
		sc.Granularity = quant.PerTensor
	case strings.HasPrefix(m[2], "g"):
		sc.Granularity = quant.PerGroup
		sc.GroupSize, _ = strconv.Atoi(m[2][1:])
	}
	if err := sc.Validate(); err != nil {
		return Spec{}, fmt.Errorf("scheme %q: %w", s, err)
	}
	sp := Spec{Name: strings.ToLower(strings.TrimSpace(s)), Weight: sc}
	switch m[4] {
	case "a8":
		sp.Act = model.ActPerToken
	case "a8s":
		sp.Act = model.ActStatic
	}
	return sp, nil
}

// Apply replaces every linear layer of m by its fake-quantized version: weights quantized
// with quant.Quantize (search opt) and dequantized. amax gives each layer's calibrated
// activation threshold for static activation quantization (keyed by linear name).
func Apply(m *model.Model, sp Spec, opt quant.SearchOptions, amax map[string]float32) error {
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		deq, err := FakeQuantizeWeight(name, w.F32(), w.Shape[0], w.Shape[1], sp.Weight, opt)
		if err != nil {
			return fmt.Errorf("quantize %s as %s: %w", name, sp.Name, err)
		}
		var bias []float32
		if b := m.Weight(name + ".bias"); b != nil {
			bias = b.F32()
		}
		var a float32
		if sp.Act == model.ActStatic {
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
		act, amax := model.ActNone, float32(0)
		if l.Act != nil {
			if l.Act.Dynamic {
				act = model.ActPerToken
			} else {
				act, amax = model.ActStatic, l.Act.Amax
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
