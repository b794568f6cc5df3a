package quant

import (
	"fmt"
	"math"
)

// ErrorStats measures how far a reconstruction is from a reference, over all elements.
type ErrorStats struct {
	MSE    float64 // mean of (got-ref)^2
	SQNRdB float64 // 10*log10(sum ref^2 / sum (got-ref)^2); +Inf when exact, -Inf when ref is all zero and got is not
	Cosine float64 // dot(ref, got) / (|ref| |got|); 1 when both are all zero, 0 when only one is
	MaxAbs float64 // max |got-ref|
}

func (e ErrorStats) String() string {
	return fmt.Sprintf("mse=%.4g sqnr=%.2fdB cos=%.6f maxabs=%.4g", e.MSE, e.SQNRdB, e.Cosine, e.MaxAbs)
}

// Compare computes ErrorStats of got against ref, summing in float64 in a fixed order
// (errorSums: element i in lane i%8, index order within a lane), so the result is
// deterministic. Lengths must match; otherwise every field is NaN (use
// CompareChecked to get an error instead).
func Compare(ref, got []float32) ErrorStats {
	st, err := CompareChecked(ref, got)
	if err != nil {
		nan := math.NaN()
		return ErrorStats{MSE: nan, SQNRdB: nan, Cosine: nan, MaxAbs: nan}
	}
	return st
}

// CompareChecked is Compare with an error for mismatched lengths.
func CompareChecked(ref, got []float32) (ErrorStats, error) {
	if len(ref) != len(got) {
		return ErrorStats{}, fmt.Errorf("quant: compare %d reference values with %d", len(ref), len(got))
	}
	var e errorSums
	e.add(ref, got)
	return e.stats(len(ref)), nil
}
