package awq

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/tensor"
)

// Fold returns a new tensor map (the untouched tensors shared with ts) in which, for every
// group, the consumer layers' input columns are multiplied by the scales and the producer
// (RMSNorm weight, or producer linear rows and bias) is divided by them, each rescaled
// tensor stored in its original dtype. A tensor that is both (v_proj, up_proj: consumer of
// one group, producer of the next) gets both. It also returns the scales actually applied:
// a norm entry becomes norm/round(norm/s), so that when the norm is rounded to F16/BF16
// the consumer's columns still get exactly the inverse (the model stays equivalent up to
// float32 rounding whatever the dtype); a zero norm entry keeps s. Producer linear rows in
// F16/BF16 are rounded, so there the equivalence is up to that dtype's precision.
func Fold(ts map[string]*tensor.Tensor, scales []Scales) (map[string]*tensor.Tensor, []Scales, error) {
	work := map[string][]float32{} // name -> F32 working copy of a tensor being rescaled
	get := func(name string, shape ...int) ([]float32, error) {
		if v, ok := work[name]; ok {
			return v, nil
		}
		t := ts[name]
		if t == nil {
			return nil, fmt.Errorf("awq: fold: missing tensor %s", name)
		}
		if !t.DType.IsFloat() || len(t.Shape) != len(shape) {
			return nil, fmt.Errorf("awq: fold: tensor %s is %s %v, want a float tensor of rank %d", name, t.DType, t.Shape, len(shape))
		}
		for i, d := range shape {
			if d >= 0 && t.Shape[i] != d {
				return nil, fmt.Errorf("awq: fold: tensor %s has shape %v, want %v (-1: any)", name, t.Shape, shape)
			}
		}
		v := append([]float32(nil), t.ToF32()...)
		work[name] = v
		return v, nil
	}
	applied := make([]Scales, len(scales))
	for gi, sc := range scales {
		g := sc.Group
		if len(sc.S) != g.Channels {
			return nil, nil, fmt.Errorf("awq: fold: group of %s has %d scales, want %d", g.Prev, len(sc.S), g.Channels)
		}
		for e, v := range sc.S {
			if !(v > 0) || math.IsInf(float64(v), 0) {
				return nil, nil, fmt.Errorf("awq: fold: group of %s: scale %d is %g (want finite > 0)", g.Prev, e, v)
			}
		}
		s := append([]float32(nil), sc.S...)
		if g.Norm {
			norm, err := get(g.Prev, g.Channels)
			if err != nil {
				return nil, nil, err
			}
			dt := ts[g.Prev].DType
			for c, n := range norm {
				r := roundTo(dt, n/s[c])
				if r != 0 && n != 0 {
					s[c] = float32(float64(n) / float64(r))
				}
				norm[c] = r
			}
		} else {
			w, err := get(g.Prev, g.Channels, -1)
			if err != nil {
				return nil, nil, err
			}
			k := len(w) / g.Channels
			for r := 0; r < g.Channels; r++ {
				for c := r * k; c < (r+1)*k; c++ {
					w[c] /= s[r]
				}
			}
			if g.PrevBias != "" {
				b, err := get(g.PrevBias, g.Channels)
				if err != nil {
					return nil, nil, err
				}
				for r := range b {
					b[r] /= s[r]
				}
			}
		}
		sIn := g.Expand(s)
		for _, name := range g.Layers {
			w, err := get(name+".weight", -1, g.In)
			if err != nil {
				return nil, nil, err
			}
			k := g.In
			for i, v := range w {
				w[i] = v * sIn[i%k]
			}
		}
		applied[gi] = sc
		applied[gi].S = s
	}
	out := make(map[string]*tensor.Tensor, len(ts))
	for name, t := range ts {
		out[name] = t
	}
	for name, v := range work {
		t := ts[name]
		nt := tensor.FromF32(v, append([]int(nil), t.Shape...)...)
		if t.DType != tensor.F32 {
			nt = nt.Convert(t.DType)
		}
		out[name] = nt
	}
	return out, applied, nil
}

// roundTo rounds v to the precision of dtype d (F32: unchanged).
func roundTo(d tensor.DType, v float32) float32 {
	switch d {
	case tensor.F16:
		return tensor.F16ToF32(tensor.F32ToF16(v))
	case tensor.BF16:
		return tensor.BF16ToF32(tensor.F32ToBF16(v))
	}
	return v
}

// ScaleHessians returns hs with every scaled layer's Hessian replaced by that of its
// scaled input (ScaleHessian with the group's per-input-channel scales); the other
// layers' Hessians are shared.
func ScaleHessians(hs map[string]*gptq.Hessian, scales []Scales) (map[string]*gptq.Hessian, error) {
	out := make(map[string]*gptq.Hessian, len(hs))
	for name, h := range hs {
		out[name] = h
	}
	for _, sc := range scales {
		sIn := sc.Expand(sc.S)
		for _, name := range sc.Layers {
			h := hs[name]
			if h == nil {
				return nil, fmt.Errorf("awq: no Hessian for layer %s", name)
			}
			nh, err := ScaleHessian(h, sIn)
			if err != nil {
				return nil, fmt.Errorf("awq: %s: %w", name, err)
			}
			out[name] = nh
		}
	}
	return out, nil
}
