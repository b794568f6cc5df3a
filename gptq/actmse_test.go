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
	for _, s := range allWidthSchemes() {
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

// In its block objective (per group e^T H_g e) the grid search is never worse than max:
// r = 1 is a candidate and ties keep it. The row refinement then never increases a row's
// true output error e^T H e, and the result is never worse than max per row.
func TestActMSENeverWorseThanMax(t *testing.T) {
	const rows, cols, tokens = 32, 128, 400
	h := hessianOf(t, correlatedInputs(testutil.Rand(32), tokens, cols), tokens, cols)
	hm := h.Matrix()
	w := testutil.StudentT(testutil.Rand(33), rows*cols, 4)
	for _, s := range allWidthSchemes() {
		t.Run(s.String(), func(t *testing.T) {
			l, err := quant.NewLayout(s, rows, cols)
			require.NoError(t, err)
			deq := func(sc []float32, z []int32) []float32 {
				q, err := quant.NewQTensor("l", s, rows, cols, roundAll(s, l, w, sc, z), sc, z)
				require.NoError(t, err)
				return quant.Dequantize(q)
			}
			dm := deq(searchAllRefine(s, l, w, nil, ClipNone, false))
			db := deq(searchAllRefine(s, l, w, hm, ClipActMSE, false))
			da := deq(searchAllRefine(s, l, w, hm, ClipActMSE, true))
			e := make([]float64, cols)
			rowErr := func(d []float32, r, c0, n int, hg []float64) float64 {
				for j := 0; j < n; j++ {
					e[j] = float64(w[r*cols+c0+j]) - float64(d[r*cols+c0+j])
				}
				return quadForm(hg, e[:n])
			}
			for r := 0; r < rows && !l.PerTensor; r++ { // PerTensor: the total below is its objective
				for g := 0; g < l.Groups; g++ {
					hg := diagBlock(hm, cols, g*l.GroupSize, l.GroupSize)
					assert.LessOrEqual(t, rowErr(db, r, g*l.GroupSize, l.GroupSize, hg), rowErr(dm, r, g*l.GroupSize, l.GroupSize, hg)*(1+1e-9), "block objective, row %d group %d", r, g)
				}
				full := rowErr(da, r, 0, cols, hm)
				assert.LessOrEqual(t, full, rowErr(db, r, 0, cols, hm)*(1+1e-9), "refinement, row %d", r)
				assert.LessOrEqual(t, full, rowErr(dm, r, 0, cols, hm)*(1+1e-9), "vs max, row %d", r)
			}
			em, eb, ea := OutputError(w, dm, rows, cols, h), OutputError(w, db, rows, cols, h), OutputError(w, da, rows, cols, h)
			t.Logf("output error max %.4g act-mse block-diagonal %.4g refined %.4g", em, eb, ea)
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
	for _, s := range append(schemes()[:4], otherWidths()...) {
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
