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
// where a group is the whole row). Parameters come back [rows, groups] row-major (one
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
func searchAll(s quant.Scheme, l layout, w []float32, hm []float64, clip Clip) ([]float32, []int32) {
	scales := make([]float32, l.nParams())
	zeros := make([]int32, l.nParams())
	if l.perTensor {
		scales[0], zeros[0] = searchGroup(s, w, l.rows, l.cols, hm, clip, make([]float64, l.cols))
		return scales, zeros
	}
	blocks := make([][]float64, l.groups)
	if hm != nil {
		for g := range blocks {
			blocks[g] = diagBlock(hm, l.cols, g*l.gs, l.gs)
		}
	}
	parallelFor(l.rows, func(r int) {
		e := make([]float64, l.gs)
		for g := 0; g < l.groups; g++ {
			vals := w[r*l.cols+g*l.gs : r*l.cols+(g+1)*l.gs]
			p := r*l.groups + g
			scales[p], zeros[p] = searchGroup(s, vals, 1, l.gs, blocks[g], clip, e)
		}
	})
	return scales, zeros
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
	l, _ := newLayout(s, rows, cols)
	levels := make([]int32, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			p := l.param(r, c)
			levels[r*cols+c] = s.QuantizeValue(w[r*cols+c], scales[p], zeros[p])
		}
	}
	return quant.NewQTensor(name, s, rows, cols, levels, scales, zeros)
}

// checkLayer validates the weights of a layer and returns its group layout.
func checkLayer(name string, w []float32, rows, cols int, s quant.Scheme) (layout, error) {
	l, err := newLayout(s, rows, cols)
	if err != nil {
		return layout{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(w) != rows*cols {
		return layout{}, fmt.Errorf("%s: %d weights for shape %dx%d", name, len(w), rows, cols)
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return layout{}, fmt.Errorf("%s: non-finite weight %v at row %d, column %d", name, v, i/cols, i%cols)
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
