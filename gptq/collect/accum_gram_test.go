package collect

import (
	"math"
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Gram matrices summed elsewhere (a device) and added with AddGram, fetched by a Defer'd
// function when Hessians is called, give what the hook gives for the same inputs: the same
// sums, tokens and sharing; unwanted layers are dropped; bad sums are errors naming the layer.
func TestAccumulatorAddGramEqualsHook(t *testing.T) {
	r := testutil.Rand(4)
	const k, m = 6, 5
	x1, x2 := testutil.Gaussian(r, m*k, 1), testutil.Gaussian(r, m*k, 1)
	names := []string{"q", "k", "v"}

	viaHook := NewAccumulator([]string{"q", "v"})
	hook := viaHook.Hook()
	for _, x := range [][]float32{x1, x2} {
		for _, n := range names {
			hook(n, x, m, k)
		}
		viaHook.EndBatch()
	}
	want, err := viaHook.Hessians()
	require.NoError(t, err)

	elsewhere, err := gptq.NewHessian(k) // the same sums, made outside the accumulator
	require.NoError(t, err)
	require.NoError(t, elsewhere.Add(x1, m, k))
	require.NoError(t, elsewhere.Add(x2, m, k))
	viaGram := NewAccumulator([]string{"q", "v"})
	assert.True(t, viaGram.Wants("v"))
	assert.False(t, viaGram.Wants("k"))
	fetched := 0
	viaGram.Defer(func() error {
		fetched++
		return viaGram.AddGram(names, k, elsewhere.Tokens, elsewhere.Sum)
	})
	got, err := viaGram.Hessians()
	require.NoError(t, err)
	assert.Equal(t, 1, fetched)
	require.Len(t, got, 2)
	assert.Equal(t, want["q"].Sum, got["q"].Sum)
	assert.Equal(t, want["q"].Tokens, got["q"].Tokens)
	assert.Same(t, got["q"], got["v"], "layers reading one input share one Hessian")
	_, err = viaGram.Hessians()
	require.NoError(t, err)
	assert.Equal(t, 1, fetched, "a deferred fetch runs once")

	bad := append([]float64(nil), elsewhere.Sum...)
	bad[k+2] = math.NaN()
	acc := NewAccumulator(nil)
	assert.ErrorContains(t, acc.AddGram([]string{"down"}, k, 5, bad), "down: non-finite input statistics (entry 1, 2")
	assert.ErrorContains(t, acc.AddGram([]string{"down"}, k, 5, bad[:7]), "Gram matrix of 7 entries for width 6")
	acc.Defer(func() error { return acc.AddGram([]string{"up"}, k, 5, bad) })
	_, err = acc.Hessians()
	assert.ErrorContains(t, err, "up: non-finite")
}
