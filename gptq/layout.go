package gptq

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// layout describes how a [rows, cols] matrix is cut into scale groups under a scheme.
type layout struct {
	rows, cols int
	gs         int // columns per group (cols for PerTensor/PerChannel)
	groups     int // groups per row
	perTensor  bool
}

// nParams is the number of (scale, zero) pairs the scheme stores.
func (l layout) nParams() int {
	if l.perTensor {
		return 1
	}
	return l.rows * l.groups
}

// param returns the index of the parameters used by element (r, c).
func (l layout) param(r, c int) int {
	if l.perTensor {
		return 0
	}
	return r*l.groups + c/l.gs
}

func newLayout(s quant.Scheme, rows, cols int) (layout, error) {
	if err := s.Validate(); err != nil {
		return layout{}, err
	}
	if rows <= 0 || cols <= 0 {
		return layout{}, fmt.Errorf("shape %dx%d must be positive", rows, cols)
	}
	gs, groups, err := s.GroupCols(cols)
	if err != nil {
		return layout{}, err
	}
	return layout{rows: rows, cols: cols, gs: gs, groups: groups, perTensor: s.Granularity == quant.PerTensor}, nil
}
