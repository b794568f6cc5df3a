package model

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// logitsBothExps runs the forward pass with expf and with math.Exp (the float64 reference
// path) and returns the largest logit difference and the largest |logit|.
func logitsBothExps(t *testing.T, m *Model, seqs [][]int) (diff, scale float64) {
	t.Helper()
	fast, err := m.Forward(seqs, nil)
	require.NoError(t, err)
	m.exp64 = true
	defer func() { m.exp64 = false }()
	ref, err := m.Forward(seqs, nil)
	require.NoError(t, err)
	for b := range seqs {
		diff = max(diff, maxAbsDiff(fast[b], ref[b]))
		for _, v := range ref[b] {
			scale = max(scale, abs64(float64(v)))
		}
	}
	return diff, scale
}

// With expf in softmax and SiLU, the real model's logits over a 256-token prefill stay
// within 1e-5 of the largest logit of those computed with math.Exp (float32 rounding of the
// rest of the pass is of the same order), and the greedy choice never changes (the greedy
// reference itself is checked in greedy_test.go).
func TestExpfLogitsMatchExp64Stories(t *testing.T) {
	m := loadStories(t)
	ids := readGreedyRef(t)
	seq := append([]int{1}, ids[:len(ids)-1]...)
	diff, scale := logitsBothExps(t, m, [][]int{seq})
	t.Logf("stories260K: max |logit diff| %.3g, max |logit| %.3g", diff, scale)
	require.LessOrEqual(t, diff, 1e-5*scale)
}

// The same on random llamatest models (GQA, ragged batch), whose Gaussian weights give
// flatter attention than a trained model.
func TestExpfLogitsMatchExp64Random(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		m := tinyModel(t, tinyConfig(), seed)
		seqs := [][]int{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, {1, 39, 38}}
		diff, scale := logitsBothExps(t, m, seqs)
		t.Logf("seed %d: max |logit diff| %.3g, max |logit| %.3g", seed, diff, scale)
		require.LessOrEqual(t, diff, 1e-5*scale, "seed %d", seed)
	}
}
