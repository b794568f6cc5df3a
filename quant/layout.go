package quant

import "fmt"

// Layout is how a [Rows, Cols] weight matrix is cut into scale groups under a scheme: the
// one description quant, gptq and the kernels' packers share. Element (r, c) uses
// parameter (scale, zero) Param(r, c) of NParams.
type Layout struct {
	Rows, Cols int
	GroupSize  int // columns per scale group (Cols for PerTensor and PerChannel)
	Groups     int // scale groups per row
	PerTensor  bool
}

// NewLayout validates the scheme and the shape; the group size must divide Cols (fit it
// with Scheme.FitCols first).
func NewLayout(s Scheme, rows, cols int) (Layout, error) {
	if err := s.Validate(); err != nil {
		return Layout{}, err
	}
	if rows <= 0 || cols <= 0 {
		return Layout{}, fmt.Errorf("shape %dx%d is empty or negative", rows, cols)
	}
	size, groups, err := s.GroupCols(cols)
	if err != nil {
		return Layout{}, err
	}
	return Layout{Rows: rows, Cols: cols, GroupSize: size, Groups: groups, PerTensor: s.Granularity == PerTensor}, nil
}

// NParams is the number of (scale, zero) entries: Rows*Groups, or 1 for PerTensor.
func (l Layout) NParams() int {
	if l.PerTensor {
		return 1
	}
	return l.Rows * l.Groups
}

// paramSlices returns row r's Groups scales and zero points (zs nil when zeros is nil)
// from Param(r, 0) on: the one pair of a per-tensor layout serves every row.
func (l Layout) paramSlices(scales []float32, zeros []int32, r int) (sc []float32, zs []int32) {
	i := l.Param(r, 0)
	if zeros != nil {
		zs = zeros[i : i+l.Groups]
	}
	return scales[i : i+l.Groups], zs
}

// Param is the index into scales/zeros of element (r, c).
func (l Layout) Param(r, c int) int {
	if l.PerTensor {
		return 0
	}
	return r*l.Groups + c/l.GroupSize
}
