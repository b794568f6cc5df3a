package quant

import (
	"fmt"

	"github.com/autoq/autoq/tensor"
)

// checkLayout validates the scheme, the shape against len(w) and the group size. It does
// not look at the values.
func checkLayout(name string, n, rows, cols int, s Scheme) (Layout, error) {
	if err := s.Validate(); err != nil {
		return Layout{}, fmt.Errorf("quant: tensor %q: %w", name, err)
	}
	if rows > 0 && cols > 0 && rows*cols != n {
		return Layout{}, fmt.Errorf("quant: tensor %q: %d values for shape %dx%d (want %d)", name, n, rows, cols, rows*cols)
	}
	l, err := NewLayout(s, rows, cols)
	if err != nil {
		return Layout{}, fmt.Errorf("quant: tensor %q: %w", name, err)
	}
	return l, nil
}

// isFinite32 reports whether x is neither NaN nor ±Inf: x-x is 0 for finite x and NaN
// otherwise.
func isFinite32(x float32) bool { return x-x == 0 }

func nonFinite(name string, x float32, r, c int) error {
	return fmt.Errorf("quant: tensor %q: non-finite value %v at row %d, col %d", name, x, r, c)
}

// GroupRanges returns the min (lo) and max (hi) of every scale group of the rows x cols
// matrix w: [rows, groups] row-major, one entry for PerTensor. A NaN or Inf is an error
// naming the tensor and the first such element in row-major order.
//
// Min and max are exact (no rounding), so the result does not depend on evaluation order.
func GroupRanges(name string, w []float32, rows, cols int, s Scheme) (lo, hi []float32, err error) {
	if _, err := checkLayout(name, len(w), rows, cols, s); err != nil {
		return nil, nil, err
	}
	return groupRangesMatrix(name, matrix{rows: rows, cols: cols, dtype: tensor.F32, f32: w}, s)
}

// Params applies s.ComputeParams to each (lo[i], hi[i]). zeros is nil for symmetric
// schemes. lo and hi must have the same length (otherwise both results are nil).
func Params(s Scheme, lo, hi []float32) (scales []float32, zeros []int32) {
	if len(lo) != len(hi) {
		return nil, nil
	}
	scales = make([]float32, len(lo))
	if !s.Symmetric {
		zeros = make([]int32, len(lo))
	}
	for i := range lo {
		sc, z := s.ComputeParams(lo[i], hi[i])
		scales[i] = sc
		if zeros != nil {
			zeros[i] = z
		}
	}
	return scales, zeros
}

// checkParams validates scales/zeros for Layout l under s: counts, scales finite and
// positive, zero points inside QRange (asymmetric) or absent (symmetric).
func checkParams(name string, l Layout, s Scheme, scales []float32, zeros []int32) error {
	n := l.NParams()
	if len(scales) != n {
		return fmt.Errorf("quant: tensor %q: %d scales for %s (want %d)", name, len(scales), s, n)
	}
	for i, sc := range scales {
		if !isFinite32(sc) || sc <= 0 {
			return fmt.Errorf("quant: tensor %q: scale %d is %v (must be finite and positive)", name, i, sc)
		}
	}
	if s.Symmetric {
		if zeros != nil {
			if len(zeros) != n {
				return fmt.Errorf("quant: tensor %q: %d zero points for symmetric %s (want none, or %d zeros)", name, len(zeros), s, n)
			}
			for i, z := range zeros {
				if z != 0 {
					return fmt.Errorf("quant: tensor %q: symmetric scheme %s given zero point %d at %d", name, s, z, i)
				}
			}
		}
		return nil
	}
	if len(zeros) != n {
		return fmt.Errorf("quant: tensor %q: %d zero points for %s (want %d)", name, len(zeros), s, n)
	}
	qlo, qhi := s.QRange()
	for i, z := range zeros {
		if z < qlo || z > qhi {
			return fmt.Errorf("quant: tensor %q: zero point %d at %d outside [%d, %d]", name, z, i, qlo, qhi)
		}
	}
	return nil
}
