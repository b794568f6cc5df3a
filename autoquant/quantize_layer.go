package autoquant

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Quantizer quantizes one layer's full-precision weights w [rows, cols] with scheme s.
// The planner's method for weights below 8 bits (int4 and the 3-, 5-, 6- and 7-bit widths)
// is pluggable through it (round-to-nearest, GPTQ, ...).
type Quantizer func(name string, w []float32, rows, cols int, s quant.Scheme) (*quant.QTensor, error)

// RTN returns a round-to-nearest quantizer with the given scale search whose scales are
// first rounded to scaleDType (F32: unchanged), so that the levels are chosen for the
// scales that will be exported.
func RTN(search quant.SearchMethod, scaleDType tensor.DType) Quantizer {
	return func(name string, w []float32, rows, cols int, s quant.Scheme) (*quant.QTensor, error) {
		scales, zeros, err := quant.SearchParams(name, w, rows, cols, s, quant.SearchOptions{Method: search})
		if err != nil {
			return nil, err
		}
		if err := roundScales(name, scales, scaleDType); err != nil {
			return nil, err
		}
		return quant.QuantizeWithParams(name, w, rows, cols, s, scales, zeros)
	}
}

// BestGPTQ are the GPTQ settings autoq uses for weights below 8 bits: activation-order column visits and
// the activation-aware (output-error) clipping search of package gptq.
var BestGPTQ = gptq.Options{ActOrder: true, Clip: gptq.ClipActMSE}

// GPTQ returns a quantizer using GPTQ error compensation with each layer's Hessian from
// hs (gptq/collect.Hessians); a layer without one is an error.
//
// The quantizer factors each Hessian once for consecutive calls on one layer (several
// candidate schemes): hs must not change while it is in use.
func GPTQ(hs map[string]*gptq.Hessian, opt gptq.Options) Quantizer {
	var factors gptq.FactorCache
	return func(name string, w []float32, rows, cols int, s quant.Scheme) (*quant.QTensor, error) {
		h := hs[name]
		if h == nil {
			return nil, fmt.Errorf("gptq: no Hessian for layer %s (was it calibrated?)", name)
		}
		q, _, err := gptq.QuantizeWith(&factors, name, w, rows, cols, s, h, opt)
		return q, err
	}
}

// roundScales rounds scales to d in place (F32: nothing to do).
func roundScales(name string, scales []float32, d tensor.DType) error {
	if d == tensor.F32 || d == tensor.Invalid {
		return nil
	}
	q := &quant.QTensor{Name: name, Scales: scales}
	return export.RoundScales(q, d)
}

// Quantizers says how each kind of layer is quantized.
type Quantizers struct {
	LowBit Quantizer // weights below 8 bits (3 to 7, int4 included); nil: RTN with the MSE clipping search
	Int8   Quantizer // 8-bit weights; nil: RTN with the max search
	// ScaleDType is the dtype weight-only layers' scales are exported in (default F16);
	// W8A8 layers keep F32 scales (package export).
	ScaleDType tensor.DType
	// Amax holds each layer's calibrated activation threshold (static W8A8).
	Amax map[string]float32
	// Hessians are the layers' input second moments (the GPTQ calibration), when
	// collected: the k-quant grids take their diagonal as the importance, and GPTQ onto a
	// block format's grid the whole matrix.
	Hessians map[string]*gptq.Hessian
}

func (qz *Quantizers) scaleDType() tensor.DType {
	if qz.ScaleDType == tensor.Invalid {
		return tensor.F16
	}
	return qz.ScaleDType
}

// Layer is one quantized linear layer: its tensors for export and the layer that
// reproduces it in the model runner (fake-quantized, or for a llama.cpp block format the
// dense weights its blocks decode to).
type Layer struct {
	Name   string
	Recipe quant.Recipe
	Q      *quant.QTensor // nil for a block format
	Act    *export.Activation
	Linear model.Linear
	// GGUF is the layer in its llama.cpp block format (recipes q8_0 ... q6_k), rows in
	// autoq's order (the GGUF writer reorders q/k), Q nil.
	GGUF *gguf.Quantized
}

// Quantize quantizes layer name of m (its full-precision checkpoint weight) as c.
func (qz *Quantizers) Quantize(m *model.Model, name string, c quant.Recipe) (*Layer, error) {
	return qz.QuantizeWeights(m, name, c, nil)
}

// QuantizeWeights is Quantize of the weights w (nil: the checkpoint weight) in the shape of
// layer name (a sequential pass's drift-corrected target, collect.LayerInput.Target).
func (qz *Quantizers) QuantizeWeights(m *model.Model, name string, c quant.Recipe, w []float32) (*Layer, error) {
	if c.Full {
		return nil, fmt.Errorf("quantize %s: w16 is not a quantized scheme", name)
	}
	wt := m.Weight(name + ".weight")
	if wt == nil || len(wt.Shape) != 2 {
		return nil, fmt.Errorf("quantize: model has no 2-D weight %s.weight", name)
	}
	target := w != nil
	if !target {
		w = wt.ToF32()
	} else if len(w) != wt.Shape[0]*wt.Shape[1] {
		return nil, fmt.Errorf("quantize %s: %d target weights for a %v weight", name, len(w), wt.Shape)
	}
	rows, cols := wt.Shape[0], wt.Shape[1]
	if c.Block != quant.BlockNone { // the checkpoint weight, not a target
		if target {
			w = wt.ToF32()
		}
		return qz.quantizeBlock(m, name, c, w, rows, cols)
	}
	s := c.For(cols)
	scaleD := qz.scaleDType()
	if c.Act != quant.ActNone {
		scaleD = tensor.F32
	}
	var quantizer Quantizer
	switch {
	case c.Rounding == quant.RoundGPTQ && qz.LowBit == nil:
		return nil, fmt.Errorf("quantize %s as %s: GPTQ needs calibration data (the layers' input Hessians)", name, c)
	case c.Rounding == quant.RoundGPTQ:
		quantizer = qz.LowBit
	case c.Rounding == quant.RoundRTN && lowBit(c):
		quantizer = RTN(quant.SearchMSE, scaleD)
	case c.Rounding == quant.RoundRTN:
		quantizer = RTN(quant.SearchMax, scaleD)
	case lowBit(c) && qz.LowBit != nil:
		quantizer = qz.LowBit
	case lowBit(c):
		quantizer = RTN(quant.SearchMSE, scaleD)
	case qz.Int8 != nil:
		quantizer = qz.Int8
	default:
		quantizer = RTN(quant.SearchMax, scaleD)
	}
	q, err := quantizer(name, w, rows, cols, s)
	if err != nil {
		return nil, fmt.Errorf("quantize %s as %s: %w", name, c, err)
	}
	// A pluggable quantizer may return float32 scales: round them to the export dtype
	// (RTN already did, so this is then a no-op).
	if err := roundScales(name, q.Scales, scaleD); err != nil {
		return nil, err
	}
	l := &Layer{Name: name, Recipe: c, Q: q}
	act, amax := quant.ActNone, float32(0)
	switch c.Act {
	case quant.ActDynamic:
		act = quant.ActDynamic
		l.Act = &export.Activation{Dynamic: true}
	case quant.ActStatic:
		a, ok := qz.Amax[name]
		if !ok || !(a > 0) || math.IsInf(float64(a), 0) {
			return nil, fmt.Errorf("quantize %s as %s: no calibrated activation threshold for the layer (run calibration)", name, c)
		}
		act, amax = quant.ActStatic, a
		l.Act = &export.Activation{Amax: a}
	}
	var bias []float32
	if b := m.Weight(name + ".bias"); b != nil {
		bias = b.F32()
	}
	if l.Linear, err = model.NewFakeQuant(q, bias, act, amax); err != nil {
		return nil, err
	}
	return l, nil
}

// ApplyPlan quantizes every linear layer of m that p does not keep in full precision and
// plugs the fake-quantized layers into m. progress (optional) is called after each layer.
func ApplyPlan(m *model.Model, p *plan.Plan, qz *Quantizers, progress func()) ([]*Layer, error) {
	var out []*Layer
	for _, name := range m.LinearNames() {
		c, err := p.SchemeFor(name)
		if err != nil {
			return nil, err
		}
		if !c.Full {
			l, err := qz.Quantize(m, name, c)
			if err != nil {
				return nil, err
			}
			if err := m.SetLinear(name, l.Linear); err != nil {
				return nil, err
			}
			out = append(out, l)
		}
		if progress != nil {
			progress()
		}
	}
	return out, nil
}

// Layers returns m's linear layers with their shapes, for planning.
func Layers(m *model.Model) []plan.Layer {
	var out []plan.Layer
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		out = append(out, plan.Layer{Name: name, Rows: w.Shape[0], Cols: w.Shape[1]})
	}
	return out
}

// lowBit reports whether recipe c quantizes its weights below 8 bits (3 to 7 bits): the
// layers that --int4's method (GPTQ or RTN with MSE clipping) quantizes. 8-bit weights are
// rounded to nearest with the max search.
func lowBit(c quant.Recipe) bool { return !c.Full && c.Weight.Bits < 8 }
