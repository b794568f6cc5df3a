package awq

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/model"
)

// MeanAbs runs m over the calibration sequences (batch per forward pass) and returns every
// linear layer's per-input-channel mean |x| over all calibration tokens (float64 sums in
// token order: deterministic).
func MeanAbs(m *model.Model, seqs [][]int, batch int) (map[string][]float64, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("awq: no calibration sequences")
	}
	if batch <= 0 {
		batch = 1
	}
	sums := map[string][]float64{}
	tokens := map[string]int64{}
	var hookErr error
	for b0 := 0; b0 < len(seqs); b0 += batch {
		hook := func(name string, x []float32, M, K int) {
			s := sums[name]
			if s == nil {
				s = make([]float64, K)
				sums[name] = s
			}
			if len(s) != K {
				hookErr = fmt.Errorf("awq: %s: input width %d, earlier %d", name, K, len(s))
				return
			}
			for t := 0; t < M; t++ {
				for c, v := range x[t*K : (t+1)*K] {
					s[c] += math.Abs(float64(v))
				}
			}
			tokens[name] += int64(M)
		}
		if _, err := m.Forward(seqs[b0:min(b0+batch, len(seqs))], hook); err != nil {
			return nil, fmt.Errorf("awq: calibration batch %d: %w", b0/batch, err)
		}
		if hookErr != nil {
			return nil, hookErr
		}
	}
	for name, s := range sums {
		for c := range s {
			s[c] /= float64(tokens[name])
			if math.IsNaN(s[c]) || math.IsInf(s[c], 0) {
				return nil, fmt.Errorf("awq: %s: input channel %d has a non-finite mean |x|", name, c)
			}
		}
	}
	for _, name := range m.LinearNames() {
		if sums[name] == nil {
			return nil, fmt.Errorf("awq: linear layer %s saw no input during calibration", name)
		}
	}
	return sums, nil
}
