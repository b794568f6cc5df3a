package quant

// This file fixes the reference API that package backend's CPU implementation, the CUDA
// twins and the CLI build on. OWNER (quant helper): replace every panic with the real
// implementation (in files of your choice) and delete this note.

// SearchMethod is how clipping ranges (and so scales) are chosen.
type SearchMethod uint8

const (
	SearchMax        SearchMethod = iota + 1 // absmax (sym) or min/max (asym) of each group
	SearchPercentile                         // the Percentile-th percentile of |x| (sym) or of x on each side (asym)
	SearchMSE                                // grid over clipping ratios minimising the weight reconstruction error
)

// SearchOptions configures a scale search.
type SearchOptions struct {
	Method     SearchMethod
	Percentile float64 // for SearchPercentile, in (0, 100]; default 99.99
	// Grid for SearchMSE: candidate ratios r_i = (GridSteps-i)/GridSteps ... see MSEGrid.
}
