package gptq

import (
	"github.com/autoq/autoq/quant"
)

// Clip is how a group's clipping range (and so its scale) is chosen.
type Clip uint8

const (
	ClipNone   Clip = iota // the group's min/max (absmax when symmetric): plain round-to-nearest ranges
	ClipMSE                // grid over clipping ratios minimising the weight error sum e^2
	ClipActMSE             // the same grid minimising the output error e^T H_g e (activation-aware)
)

var clipNames = []string{ClipNone: "none", ClipMSE: "mse", ClipActMSE: "act-mse"}

func (c Clip) String() string { return quant.EnumName("Clip", c, clipNames) }

// ParseClip accepts "none" (alias "max"), "mse" and "act-mse".
func ParseClip(s string) (Clip, error) {
	if s == "max" {
		return ClipNone, nil
	}
	return quant.ParseEnum[Clip](s, clipNames, "clipping search", "none, mse or act-mse")
}

// ClipGridSteps is the number of candidate ratios: r_i = float32(100-i)/100 for
// i = 0..79, i.e. 1.00 down to 0.21, the grid of quant's MSE search.
const ClipGridSteps = quant.MSEGridSteps

// clipRatio is the i-th candidate ratio, computed in float32 exactly as the GPU does.
func clipRatio(i int) float32 { return float32(100-i) / 100 }

// groupRange returns min and max of vals.
func groupRange(vals []float32) (lo, hi float32) {
	lo, hi = vals[0], vals[0]
	for _, v := range vals[1:] {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// searchGroup chooses the scale and zero point of one scale group. vals holds nr rows of
// gs values each (nr > 1 only for PerTensor, whose one scale spans every row); hg is the
// group's [gs, gs] block of H (nil: identity, the weight-error objective). With
// ClipNone it returns the min/max parameters; otherwise it tries every ratio of the grid
// on the range [lo*r, hi*r] and keeps the first one with the smallest error, so ties go
// to the larger range and r = 1 (plain min/max) is always a candidate: the search is never
// worse than ClipNone in its own objective.
func searchGroup(s quant.Scheme, vals []float32, nr, gs int, hg []float64, clip Clip, e []float64) (float32, int32) {
	lo, hi := groupRange(vals)
	if clip == ClipNone {
		return s.ComputeParams(lo, hi)
	}
	if hg != nil {
		return searchGroupH(s, vals, nr, gs, hg, lo, hi, e)
	}
	return searchGroupEach(s, vals, nr, gs, nil, lo, hi, e)
}

// searchGroupEach is the search one candidate at a time (groupError per ratio): the MSE
// search's path, and the reference searchGroupH must equal with hg.
func searchGroupEach(s quant.Scheme, vals []float32, nr, gs int, hg []float64, lo, hi float32, e []float64) (float32, int32) {
	bestScale, bestZero := s.ComputeParams(lo, hi)
	best := groupError(s, vals, nr, gs, hg, bestScale, bestZero, e)
	for i := 1; i < ClipGridSteps; i++ {
		r := clipRatio(i)
		sc, z := s.ComputeParams(float32(lo*r), float32(hi*r))
		if err := groupError(s, vals, nr, gs, hg, sc, z, e); err < best {
			best, bestScale, bestZero = err, sc, z
		}
	}
	return bestScale, bestZero
}

// searchGroupH is searchGroup's act-mse search: the same candidates, errors and choice,
// with the errors of sixteen candidates computed in one pass over hg (groupErrors16). e is
// scratch; given lanes*gs values it is used, else one is made.
func searchGroupH(s quant.Scheme, vals []float32, nr, gs int, hg []float64, lo, hi float32, e []float64) (float32, int32) {
	if len(e) < lanes*gs {
		e = make([]float64, lanes*gs)
	}
	var sc [lanes]float32
	var z [lanes]int32
	var bestScale float32
	var bestZero int32
	var best float64
	for i0 := 0; i0 < ClipGridSteps; i0 += lanes {
		for c := range sc {
			i := min(i0+c, ClipGridSteps-1) // past the grid's end: a repeat, never chosen
			if i == 0 {
				sc[c], z[c] = s.ComputeParams(lo, hi)
			} else {
				r := clipRatio(i)
				sc[c], z[c] = s.ComputeParams(float32(lo*r), float32(hi*r))
			}
		}
		errs := groupErrors16(s, vals, nr, gs, hg, &sc, &z, e)
		for c := 0; c < lanes && i0+c < ClipGridSteps; c++ {
			if i0+c == 0 || errs[c] < best {
				best, bestScale, bestZero = errs[c], sc[c], z[c]
			}
		}
	}
	return bestScale, bestZero
}

// groupErrors16 is groupError (with hg) for sixteen candidate parameters at once: each
// sum is formed in groupError's order, so each result has its bits. e is lanes*gs scratch.
func groupErrors16(s quant.Scheme, vals []float32, nr, gs int, hg []float64, sc *[lanes]float32, z *[lanes]int32, e []float64) [lanes]float64 {
	var total [lanes]float64
	for r := 0; r < nr; r++ {
		row := vals[r*gs : (r+1)*gs]
		for j, v := range row {
			ej := e[j*lanes : (j+1)*lanes]
			for c := range ej {
				q := quant.DequantizeValue(s.QuantizeValue(v, sc[c], z[c]), sc[c], z[c])
				ej[c] = float64(float32(q - v))
			}
		}
		q := quadForm16(hg, e, gs)
		for c := range total {
			total[c] += q[c]
		}
	}
	return total
}

// groupError is sum over rows of e^T hg e (hg nil: e^T e) with e = v - Q(v) in float64.
// e is scratch of length gs.
func groupError(s quant.Scheme, vals []float32, nr, gs int, hg []float64, scale float32, zero int32, e []float64) float64 {
	var total float64
	for r := 0; r < nr; r++ {
		row := vals[r*gs : (r+1)*gs]
		for j, v := range row {
			// As quant's MSE search: the difference in float32, then widened.
			q := quant.DequantizeValue(s.QuantizeValue(v, scale, zero), scale, zero)
			e[j] = float64(float32(q - v))
		}
		if hg == nil { // quant's MSE order: one running float64 sum over the group
			for _, d := range e[:gs] {
				total = total + float64(d*d)
			}
			continue
		}
		total += quadForm(hg, e[:gs])
	}
	return total
}

// quadForm returns e^T h e for a symmetric [n, n] h, reading only the upper triangle.
func quadForm(h []float64, e []float64) float64 {
	n := len(e)
	var s float64
	for i, ei := range e {
		if ei == 0 {
			continue
		}
		row := h[i*n : (i+1)*n]
		off := dot(row[i+1:], e[i+1:])
		s += ei * (row[i]*ei + 2*off)
	}
	return s
}
