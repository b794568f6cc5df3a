package gptq

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ClipMSE is quant's weight-MSE search, bit for bit; ClipNone is quant's max search.
func TestClipMatchesQuantSearches(t *testing.T) {
	const rows, cols = 7, 128
	w := testutil.StudentT(testutil.Rand(30), rows*cols, 3)
	for _, s := range schemes() {
		for clip, m := range map[Clip]quant.SearchMethod{ClipNone: quant.SearchMax, ClipMSE: quant.SearchMSE} {
			sc, z, err := SearchParams("l", w, rows, cols, s, nil, clip)
			require.NoError(t, err)
			rsc, rz, err := quant.SearchParams("l", w, rows, cols, s, quant.SearchOptions{Method: m})
			require.NoError(t, err)
			assert.Equal(t, rsc, sc, "%s %s", s, clip)
			if rz != nil {
				assert.Equal(t, rz, z, "%s %s", s, clip)
			}
		}
	}
}

// With H = I the activation-aware objective is the weight error: act-mse == mse.
func TestActMSEWithIdentityIsMSE(t *testing.T) {
	const rows, cols = 5, 128
	w := testutil.Laplace(testutil.Rand(31), rows*cols, 1)
	h := identityHessian(t, cols)
	for _, s := range schemes()[:5] {
		a, az, err := ActMSEParams("l", w, rows, cols, s, h)
		require.NoError(t, err)
		m, mz, err := SearchParams("l", w, rows, cols, s, nil, ClipMSE)
		require.NoError(t, err)
		assert.Equal(t, m, a, "%s", s)
		assert.Equal(t, mz, az, "%s", s)
	}
}

// act-mse includes r = 1 (the max range) as a candidate and keeps it on ties, so in its
// own objective (per group e^T H_g e) it is never worse than max; with whole-row groups
// (PerChannel) and for PerTensor (one group over all rows) that objective is the true
// output error.
func TestActMSENeverWorseThanMax(t *testing.T) {
	const rows, cols, tokens = 32, 128, 400
	h := hessianOf(t, correlatedInputs(testutil.Rand(32), tokens, cols), tokens, cols)
	hm := h.Matrix()
	w := testutil.StudentT(testutil.Rand(33), rows*cols, 4)
	for _, s := range schemes() {
		t.Run(s.String(), func(t *testing.T) {
			l, err := newLayout(s, rows, cols)
			require.NoError(t, err)
			maxQ, err := RTN("l", w, rows, cols, s, h, ClipNone)
			require.NoError(t, err)
			actQ, err := RTN("l", w, rows, cols, s, h, ClipActMSE)
			require.NoError(t, err)
			dm, da := quant.Dequantize(maxQ), quant.Dequantize(actQ)
			e := make([]float64, l.gs)
			for r := 0; r < rows && !l.perTensor; r++ { // PerTensor: the total below is its objective
				for g := 0; g < l.groups; g++ {
					hg := diagBlock(hm, cols, g*l.gs, l.gs)
					obj := func(d []float32) float64 {
						for j := range e {
							c := r*cols + g*l.gs + j
							e[j] = float64(w[c]) - float64(d[c])
						}
						return quadForm(hg, e)
					}
					assert.LessOrEqual(t, obj(da), obj(dm)*(1+1e-9), "row %d group %d", r, g)
				}
			}
			em, ea := OutputError(w, dm, rows, cols, h), OutputError(w, da, rows, cols, h)
			t.Logf("output error max %.4g act-mse %.4g", em, ea)
			assert.LessOrEqual(t, ea, em)
		})
	}
}

// act-mse weighs errors by the activations: on inputs whose scales differ a lot it must
// beat the weight-only MSE search in output error.
func TestActMSEBeatsWeightMSEInOutputError(t *testing.T) {
	const rows, cols, tokens = 32, 128, 400
	h := hessianOf(t, correlatedInputs(testutil.Rand(34), tokens, cols), tokens, cols)
	w := testutil.StudentT(testutil.Rand(35), rows*cols, 4)
	for _, s := range schemes()[:4] {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			mq, err := RTN("l", w, rows, cols, s, h, ClipMSE)
			require.NoError(t, err)
			aq, err := RTN("l", w, rows, cols, s, h, ClipActMSE)
			require.NoError(t, err)
			assert.Less(t, OutputError(w, quant.Dequantize(aq), rows, cols, h), OutputError(w, quant.Dequantize(mq), rows, cols, h))
		})
	}
}

func TestActMSENeedsHessian(t *testing.T) {
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}
	_, _, err := ActMSEParams("blk.3.ffn_down", make([]float32, 8), 2, 4, s, nil)
	assert.ErrorContains(t, err, "blk.3.ffn_down: no Hessian")
	c, err := ParseClip("act-mse")
	require.NoError(t, err)
	assert.Equal(t, ClipActMSE, c)
	_, err = ParseClip("foo")
	assert.Error(t, err)
}
