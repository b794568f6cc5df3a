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

// Compare computes ErrorStats of got against ref, summing in float64 in index order (so the
// result is deterministic). Lengths must match; otherwise every field is NaN (use
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
	var sig, noise, gg, dot, maxAbs float64
	for i, r := range ref {
		a, b := float64(r), float64(got[i])
		d := b - a
		sig += a * a
		gg += b * b
		noise += d * d
		dot += a * b
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	st := ErrorStats{MaxAbs: maxAbs}
	if len(ref) > 0 {
		st.MSE = noise / float64(len(ref))
	}
	switch {
	case noise == 0:
		st.SQNRdB = math.Inf(1)
	case sig == 0:
		st.SQNRdB = math.Inf(-1)
	default:
		st.SQNRdB = 10 * math.Log10(sig/noise)
	}
	switch {
	case noise == 0: // identical (also both all zero): exactly 1, not 1 - rounding
		st.Cosine = 1
	case sig == 0 || gg == 0:
		st.Cosine = 0
	default:
		st.Cosine = math.Max(-1, math.Min(1, dot/(math.Sqrt(sig)*math.Sqrt(gg))))
	}
	return st, nil
}
