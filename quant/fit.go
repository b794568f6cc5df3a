package quant

// FitCols adapts a group-wise scheme to rows of cols inputs. It is the one rule every
// package uses (quantize, eval, GPTQ, the planner, the export) when the group size does not
// suit the layer:
//   - the group size when it divides cols and is smaller than cols;
//   - otherwise the smallest divisor of cols above it (groups never get finer than asked,
//     so the bits per weight never grow): 172 inputs with groups of 32 get groups of 43;
//   - per channel when no such divisor below cols exists (64 inputs with groups of 128).
//
// Schemes that are not per group are returned unchanged.
func (s Scheme) FitCols(cols int) Scheme {
	if s.Granularity != PerGroup || cols%s.GroupSize == 0 && s.GroupSize < cols {
		return s
	}
	for g := s.GroupSize + 1; g < cols; g++ {
		if cols%g == 0 {
			s.GroupSize = g
			return s
		}
	}
	s.Granularity, s.GroupSize = PerChannel, 0
	return s
}
