package eval

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAccumulatorHandComputed(t *testing.T) {
	// vocab 2, window [BOS=0, 1, 0, 1]: targets at p=0 (id 1), p=1 (id 0 = BOS, skipped),
	// p=2 (id 1); the last position has no target.
	win := []int{0, 1, 0, 1}
	l3 := float32(math.Log(3))
	logits := []float32{0, 0, 9, 9, l3, 0, 5, 5} // p0 uniform; p2: P = (3/4, 1/4)
	ref := []float32{0, l3, 1, 1, 0, 0, 7, 7}    // p0: P = (1/4, 3/4); p2 uniform
	var a Accumulator
	a.AddWindow(win, logits, ref, 2, 0)
	assert.Equal(t, 2, a.Scored)
	assert.InDelta(t, (math.Log(2)+math.Log(4))/2, a.NLL(), 1e-7) // log 3 is rounded to float32
	assert.InDelta(t, math.Exp((math.Log(2)+math.Log(4))/2), a.Perplexity(), 1e-7)
	klP0 := 0.25*math.Log(0.25/0.5) + 0.75*math.Log(0.75/0.5)
	klP2 := 0.5*math.Log(0.5/0.75) + 0.5*math.Log(0.5/0.25)
	assert.InDelta(t, (klP0+klP2)/2, a.KL(), 1e-7)
	// p0: argmax ref is 1, model ties -> 0 (first); p2: ref ties -> 0, model 0: one agrees.
	assert.InDelta(t, 0.5, a.Top1(), 0)
}

func TestAccumulatorAgainstItselfHasZeroKL(t *testing.T) {
	win := []int{3, 1, 2, 0, 4}
	logits := []float32{1, 2, 3, 4, 5, -1, 0, 7, 2, 2, 3, 3, 3, 1, 0, 9, 8, 7, 6, 5, 0, 0, 0, 0, 1}
	var a Accumulator
	a.AddWindow(win, logits, logits, 5, 99)
	assert.Equal(t, 4, a.Scored)
	assert.InDelta(t, 0, a.KL(), 1e-12)
	assert.Equal(t, 1.0, a.Top1())
}

// Scoring a window's positions in consecutive parts (any cut, with and without a
// reference) gives the whole window's sums bit for bit.
func TestAddPositionsInPartsEqualsWindow(t *testing.T) {
	const vocab, bos = 7, 0
	win := []int{0, 3, 6, 0, 2, 2, 5, 1, 4}
	logits := make([]float32, len(win)*vocab)
	ref := make([]float32, len(win)*vocab)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)*1.7)) * 4
		ref[i] = float32(math.Cos(float64(i)*0.9)) * 3
	}
	for _, withRef := range []bool{false, true} {
		r := ref
		if !withRef {
			r = nil
		}
		var whole Accumulator
		whole.AddWindow(win, logits, r, vocab, bos)
		for _, cuts := range [][]int{{0, 9}, {0, 1, 9}, {0, 4, 5, 9}, {0, 2, 3, 6, 8, 9}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}} {
			var parts Accumulator
			for c := 0; c+1 < len(cuts); c++ {
				a, b := cuts[c], cuts[c+1]
				var rp []float32
				if r != nil {
					rp = r[a*vocab : b*vocab]
				}
				parts.AddPositions(win, a, b, logits[a*vocab:b*vocab], rp, vocab, bos)
			}
			assert.Equal(t, whole, parts, "ref %v, cuts %v", withRef, cuts)
		}
		assert.Equal(t, 7, whole.Scored) // p0..p7 but p2, whose target is the BOS
	}
}
