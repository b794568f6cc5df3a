package gptq

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/quant"
)

// ActMSEParams chooses every group's scale and zero point by the activation-aware
// clipping search: for each group the ratio r of the grid (see ClipGridSteps) minimising
//
//	sum over the group's rows of e^T H_g e,  e = w_g - Q(w_g),
//
// where H_g is the group's diagonal [gs, gs] block of the layer's input second moment H
// (h.Matrix()). The true output error of a row is e^T H e over the whole row; its
// cross-group terms e_g^T H_gh e_h are dropped so that groups can be searched
// independently (the block-diagonal approximation; exact for PerChannel and PerTensor,
// where a group is the whole row). For PerGroup, ActMSERefinePasses passes of coordinate
// descent then refine each row towards its true output error (refineRow): each group is
// re-searched with the other groups' errors fixed, keeping a change only if it lowers the
// row's e^T H e. (Inside GPTQ, where later columns are not quantized yet when a group is
// reached, only the block-diagonal search is used.) Parameters come back [rows, groups] row-major (one
// entry for PerTensor); zeros are all 0 for symmetric schemes.
func ActMSEParams(name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian) ([]float32, []int32, error) {
	return SearchParams(name, w, rows, cols, s, h, ClipActMSE)
}

// SearchParams is ActMSEParams for any Clip (h may be nil unless clip is ClipActMSE).
func SearchParams(name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian, clip Clip) ([]float32, []int32, error) {
	l, err := checkLayer(name, w, rows, cols, s)
	if err != nil {
		return nil, nil, err
	}
	var hm []float64
	if clip == ClipActMSE {
		if err := checkHessian(name, h, cols); err != nil {
			return nil, nil, err
		}
		hm = h.Matrix()
	}
	scales, zeros := searchAll(s, l, w, hm, clip)
	return scales, zeros, nil
}

// searchAll runs searchGroup over every group of w (row-major [rows, cols]); hm is the
// full [cols, cols] H or nil.
func searchAll(s quant.Scheme, l quant.Layout, w []float32, hm []float64, clip Clip) ([]float32, []int32) {
	return searchAllRefine(s, l, w, hm, clip, true)
}

// searchAllRefine is searchAll with the act-mse row refinement switchable (tests).
func searchAllRefine(s quant.Scheme, l quant.Layout, w []float32, hm []float64, clip Clip, refine bool) ([]float32, []int32) {
	scales := make([]float32, l.NParams())
	zeros := make([]int32, l.NParams())
	if l.PerTensor {
		scales[0], zeros[0] = searchGroup(s, w, l.Rows, l.Cols, hm, clip, make([]float64, l.Cols))
		return scales, zeros
	}
	blocks := make([][]float64, l.Groups)
	if hm != nil {
		for g := range blocks {
			blocks[g] = diagBlock(hm, l.Cols, g*l.GroupSize, l.GroupSize)
		}
	}
	parallelFor(l.Rows, func(r int) {
		e := make([]float64, lanes*l.GroupSize)
		for g := 0; g < l.Groups; g++ {
			vals := w[r*l.Cols+g*l.GroupSize : r*l.Cols+(g+1)*l.GroupSize]
			p := r*l.Groups + g
			scales[p], zeros[p] = searchGroup(s, vals, 1, l.GroupSize, blocks[g], clip, e)
		}
		if hm != nil && l.Groups > 1 && refine {
			refineRow(s, l, w[r*l.Cols:(r+1)*l.Cols], hm, scales[r*l.Groups:(r+1)*l.Groups], zeros[r*l.Groups:(r+1)*l.Groups])
		}
	})
	return scales, zeros
}

// ActMSERefinePasses is the number of coordinate-descent passes refineRow makes.
const ActMSERefinePasses = 2

// refineRow improves a row's act-mse parameters from the block-diagonal choice towards the
// true output error e^T H e of the whole row: group by group, with the other groups'
// errors fixed, it picks the grid ratio minimising e_g^T H_gg e_g + 2 e_g^T (H_g,rest e_rest)
// (the row error up to a constant). A candidate replaces the current choice only if it is
// strictly better, so the row's output error never increases; and if the result were still
// worse than plain min/max ranges, those are used: act-mse is never worse than max in the
// output error of any row.
func refineRow(s quant.Scheme, l quant.Layout, w []float32, hm []float64, scales []float32, zeros []int32) {
	k, gs := l.Cols, l.GroupSize
	e := make([]float64, k)
	rowErr := func(scales []float32, zeros []int32) float64 {
		for c := range e {
			g := c / gs
			q := quant.DequantizeValue(s.QuantizeValue(w[c], scales[g], zeros[g]), scales[g], zeros[g])
			e[c] = float64(float32(q - w[c]))
		}
		return quadForm(hm, e)
	}
	// The plain min/max parameters, to guarantee the result is never worse than them.
	maxScales, maxZeros := make([]float32, l.Groups), make([]int32, l.Groups)
	for g := range maxScales {
		lo, hi := groupRange(w[g*gs : (g+1)*gs])
		maxScales[g], maxZeros[g] = s.ComputeParams(lo, hi)
	}
	maxErr := rowErr(maxScales, maxZeros)
	rowErr(scales, zeros) // leaves e for the current choice
	cross := make([]float64, gs)
	eg := make([]float64, gs)
	hg := make([]float64, gs*gs)
	for pass := 0; pass < ActMSERefinePasses; pass++ {
		for g := 0; g < l.Groups; g++ {
			c0 := g * gs
			for j := 0; j < gs; j++ { // cross_j = sum over columns outside g of H[c0+j, c] e_c
				row := hm[(c0+j)*k : (c0+j+1)*k]
				cross[j] = dot(row[:c0], e[:c0]) + dot(row[c0+gs:], e[c0+gs:])
				copy(hg[j*gs:(j+1)*gs], row[c0:c0+gs])
			}
			vals := w[c0 : c0+gs]
			objective := func(sc float32, z int32) float64 {
				for j, v := range vals {
					q := quant.DequantizeValue(s.QuantizeValue(v, sc, z), sc, z)
					eg[j] = float64(float32(q - v))
				}
				return quadForm(hg, eg) + 2*dot(eg, cross)
			}
			best := objective(scales[g], zeros[g])
			lo, hi := groupRange(vals)
			for i := 0; i < ClipGridSteps; i++ {
				r := clipRatio(i)
				sc, z := s.ComputeParams(float32(lo*r), float32(hi*r))
				if o := objective(sc, z); o < best {
					best, scales[g], zeros[g] = o, sc, z
				}
			}
			for j, v := range vals {
				q := quant.DequantizeValue(s.QuantizeValue(v, scales[g], zeros[g]), scales[g], zeros[g])
				e[c0+j] = float64(float32(q - v))
			}
		}
	}
	if rowErr(scales, zeros) > maxErr {
		copy(scales, maxScales)
		copy(zeros, maxZeros)
	}
}

// diagBlock copies the [n, n] block of the [k, k] matrix m starting at (c0, c0).
func diagBlock(m []float64, k, c0, n int) []float64 {
	out := make([]float64, n*n)
	for i := 0; i < n; i++ {
		copy(out[i*n:(i+1)*n], m[(c0+i)*k+c0:(c0+i)*k+c0+n])
	}
	return out
}

// RTN quantizes w by round-to-nearest with parameters from SearchParams(clip).
func RTN(name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian, clip Clip) (*quant.QTensor, error) {
	scales, zeros, err := SearchParams(name, w, rows, cols, s, h, clip)
	if err != nil {
		return nil, err
	}
	l, _ := quant.NewLayout(s, rows, cols)
	levels := make([]int32, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			p := l.Param(r, c)
			levels[r*cols+c] = s.QuantizeValue(w[r*cols+c], scales[p], zeros[p])
		}
	}
	return quant.NewQTensor(name, s, rows, cols, levels, scales, zeros)
}

// checkLayer validates the weights of a layer and returns its group layout.
func checkLayer(name string, w []float32, rows, cols int, s quant.Scheme) (quant.Layout, error) {
	l, err := quant.NewLayout(s, rows, cols)
	if err != nil {
		return quant.Layout{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(w) != rows*cols {
		return quant.Layout{}, fmt.Errorf("%s: %d weights for shape %dx%d", name, len(w), rows, cols)
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return quant.Layout{}, fmt.Errorf("%s: non-finite weight %v at row %d, column %d", name, v, i/cols, i%cols)
		}
	}
	return l, nil
}

// checkHessian validates that h fits a layer with cols inputs.
func checkHessian(name string, h *Hessian, cols int) error {
	switch {
	case h == nil:
		return fmt.Errorf("%s: no Hessian (calibration statistics) for this layer", name)
	case h.K != cols:
		return fmt.Errorf("%s: Hessian width %d does not match the layer's %d input columns", name, h.K, cols)
	case h.Tokens <= 0:
		return fmt.Errorf("%s: Hessian has no calibration tokens", name)
	case len(h.Sum) != h.K*h.K:
		return fmt.Errorf("%s: Hessian holds %d values for width %d", name, len(h.Sum), h.K)
	}
	for i := 0; i < h.K; i++ {
		for j := i; j < h.K; j++ {
			if v := h.Sum[i*h.K+j]; math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s: Hessian entry (%d, %d) is %v", name, i, j, v)
			}
		}
	}
	return nil
}
