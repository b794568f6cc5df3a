package gptq

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrambledDiagonal is a diagonal H whose act-order visiting order is a known permutation:
// diag H[c] = (c*37) mod cols + 1, visited by decreasing value.
func scrambledDiagonal(t *testing.T, cols int) (*Hessian, []int) {
	m := make([]float64, cols*cols)
	perm := make([]int, cols)
	for c := 0; c < cols; c++ {
		v := (c*37)%cols + 1
		m[c*cols+c] = float64(v)
		perm[cols-v] = c // largest first
	}
	h, err := FromMatrix(cols, 1, m)
	require.NoError(t, err)
	return h, perm
}

// Dynamic groups: with a diagonal H nothing is propagated, so GPTQ is round-to-nearest on
// the columns taken in visiting order and cut into contiguous groups there; the result is
// stored in the original order with GIdx[c] = position of c / group size.
func TestDynamicGroupsAreRTNInVisitingOrder(t *testing.T) {
	const rows, cols = 5, 64
	w := randWeights(12, rows*cols)
	h, perm := scrambledDiagonal(t, cols)
	for _, s := range []quant.Scheme{
		{Bits: 4, Granularity: quant.PerGroup, GroupSize: 16},
		{Bits: 3, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
	} {
		q, _, err := Quantize("diag", w, rows, cols, s, h, Options{ActOrder: true, Groups: GroupsDynamic})
		require.NoError(t, err)
		permuted := make([]float32, len(w))
		for r := 0; r < rows; r++ {
			for p, c := range perm {
				permuted[r*cols+p] = w[r*cols+c]
			}
		}
		ref, err := quant.Quantize("ref", permuted, rows, cols, s, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		assert.Equal(t, ref.Scales, q.Scales, s.String())
		assert.Equal(t, ref.Zeros, q.Zeros, s.String())
		refLevels, got := ref.Levels(), q.Levels()
		refDeq, deq := quant.Dequantize(ref), quant.Dequantize(q)
		require.Len(t, q.GIdx, cols)
		for p, c := range perm {
			assert.Equal(t, int32(p/s.GroupSize), q.GIdx[c])
			for r := 0; r < rows; r++ {
				assert.Equal(t, refLevels[r*cols+p], got[r*cols+c])
				assert.Equal(t, refDeq[r*cols+p], deq[r*cols+c])
			}
		}
	}
}

// Static groups (the default) and runs whose visiting order keeps the contiguous groups
// carry no GIdx; per-channel schemes never do.
func TestGroupIndexOnlyWhenGroupsMove(t *testing.T) {
	const rows, cols = 4, 64
	w := randWeights(13, rows*cols)
	h, _ := scrambledDiagonal(t, cols)
	g := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 16}
	q, _, err := Quantize("static", w, rows, cols, g, h, Options{ActOrder: true})
	require.NoError(t, err)
	assert.Nil(t, q.GIdx)
	q, _, err = Quantize("natural", w, rows, cols, g, identityHessian(t, cols), Options{ActOrder: true, Groups: GroupsDynamic})
	require.NoError(t, err)
	assert.Nil(t, q.GIdx, "H = I visits columns in their order: the groups are the contiguous ones")
	q, _, err = Quantize("no-act-order", w, rows, cols, g, h, Options{Groups: GroupsDynamic})
	require.NoError(t, err)
	assert.Nil(t, q.GIdx)
	c := quant.Scheme{Bits: 4, Granularity: quant.PerChannel}
	q, _, err = Quantize("channel", w, rows, cols, c, h, Options{ActOrder: true, Groups: GroupsDynamic})
	require.NoError(t, err)
	assert.Nil(t, q.GIdx)
}

// On correlated inputs the two groupings give different but valid results, both better than
// round-to-nearest in output error, and the same bits on every run.
func TestDynamicGroupsOnCorrelatedInputs(t *testing.T) {
	const rows, cols, tokens = 24, 96, 400
	w := randWeights(14, rows*cols)
	x := correlatedInputs(testutil.Rand(15), tokens, cols)
	h := hessianOf(t, x, tokens, cols)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	for _, clip := range []Clip{ClipNone, ClipActMSE} {
		opt := Options{ActOrder: true, Groups: GroupsDynamic, Clip: clip, BlockSize: 40}
		q, _, err := Quantize("dyn", w, rows, cols, s, h, opt)
		require.NoError(t, err)
		again, _, err := Quantize("dyn", w, rows, cols, s, h, opt)
		require.NoError(t, err)
		assert.Equal(t, q, again)
		require.NotNil(t, q.GIdx)
		require.NoError(t, q.Validate())
		rtn, err := RTN("rtn", w, rows, cols, s, h, ClipNone)
		require.NoError(t, err)
		assert.Less(t, OutputError(w, quant.Dequantize(q), rows, cols, h), OutputError(w, quant.Dequantize(rtn), rows, cols, h))
	}
}

func TestParseGroupOrder(t *testing.T) {
	for _, g := range []GroupOrder{GroupsStatic, GroupsDynamic} {
		got, err := ParseGroupOrder(g.String())
		require.NoError(t, err)
		assert.Equal(t, g, got)
	}
	_, err := ParseGroupOrder("group")
	assert.ErrorContains(t, err, `unknown act-order grouping "group"`)
}
