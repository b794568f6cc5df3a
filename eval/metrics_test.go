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
