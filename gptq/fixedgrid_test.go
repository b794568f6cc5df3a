package gptq

import (
	"math"
	"runtime"
	"testing"

	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toyGrid is a fixed grid written here independently of the package: per row and run of
// 16 columns, value(q) = q*scale + min for q in [0, 15], min not a multiple of the scale
// (what a Q4_K sub-block looks like). Round returns the nearest level by brute force.
type toyGrid struct {
	cols          int
	scales, mins  []float32
	runsPerRowLen int
}

func newToyGrid(w []float32, rows, cols int) *toyGrid {
	g := &toyGrid{cols: cols, runsPerRowLen: cols / 16}
	for r := 0; r < rows; r++ {
		for b := 0; b < cols/16; b++ {
			lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
			for _, v := range w[r*cols+b*16 : r*cols+b*16+16] {
				lo, hi = min(lo, v), max(hi, v)
			}
			g.scales = append(g.scales, (hi-lo)/15*0.9) // clipped a little
			g.mins = append(g.mins, lo*0.95)
		}
	}
	return g
}

func (g *toyGrid) Round(row, col int, x float32) (int32, float32) {
	i := row*g.runsPerRowLen + col/16
	best, bestV := int32(0), g.mins[i]
	for q := int32(0); q <= 15; q++ {
		v := float32(q)*g.scales[i] + g.mins[i]
		if math.Abs(float64(v-x)) < math.Abs(float64(bestV-x)) {
			best, bestV = q, v
		}
	}
	return best, bestV
}

// ggufGrid rounds onto a gguf grid (a Q4_K grid chosen first by ChooseGrid).
type ggufGrid struct{ g *gguf.Grid }

func (a ggufGrid) Round(row, col int, x float32) (int32, float32) {
	c := a.g.CellAt(row, col)
	q := c.Nearest(x)
	return q, c.Value(q)
}

func rtnOnGrid(g Grid, w []float32, rows, cols int) ([]int32, []float32) {
	l, v := make([]int32, len(w)), make([]float32, len(w))
	for i, x := range w {
		l[i], v[i] = g.Round(i/cols, i%cols, x)
	}
	return l, v
}

// With H = I there is nothing to compensate (U is diagonal): GPTQ on the grid is the
// grid's round-to-nearest, level for level.
func TestQuantizeOnGridIdentityHessianIsRTN(t *testing.T) {
	rows, cols := 24, 64
	w := randWeights(3, rows*cols)
	g := newToyGrid(w, rows, cols)
	for _, actOrder := range []bool{false, true} {
		levels, values, rep, err := QuantizeOnGrid("l", w, rows, cols, g, identityHessian(t, cols), Options{ActOrder: actOrder, BlockSize: 16})
		require.NoError(t, err)
		assert.False(t, rep.Fallback)
		wantL, wantV := rtnOnGrid(g, w, rows, cols)
		assert.Equal(t, wantL, levels)
		assert.Equal(t, wantV, values)
	}
}

// On correlated inputs GPTQ onto the fixed grid has a lower output error e^T H e than
// round-to-nearest on the same grid, every output is a level of the grid, and the bits do
// not depend on the number of workers.
func TestQuantizeOnGridBeatsRTNOnTheSameGrid(t *testing.T) {
	r := testutil.Rand(11)
	rows, cols, m := 40, 256, 2048
	w := randWeights(12, rows*cols)
	h := hessianOf(t, correlatedInputs(r, m, cols), m, cols)
	diag := make([]float32, cols)
	for i := range diag {
		diag[i] = float32(h.Matrix()[i*cols+i])
	}
	q4k, err := gguf.ChooseGrid("l", gguf.Q4_K, w, rows, cols, diag)
	require.NoError(t, err)
	for name, g := range map[string]Grid{"toy": newToyGrid(w, rows, cols), "q4_k": ggufGrid{q4k}} {
		_, rtnV := rtnOnGrid(g, w, rows, cols)
		for _, actOrder := range []bool{false, true} {
			levels, values, rep, err := QuantizeOnGrid("l", w, rows, cols, g, h, Options{ActOrder: actOrder})
			require.NoError(t, err)
			require.False(t, rep.Fallback)
			for i, q := range levels {
				l, v := g.Round(i/cols, i%cols, values[i])
				require.Equal(t, values[i], v, "%s: output %d is a grid value", name, i)
				require.Equal(t, q, l, "%s: output %d is its level's value", name, i)
			}
			ours, rtn := OutputError(w, values, rows, cols, h), OutputError(w, rtnV, rows, cols, h)
			t.Logf("%s act-order %v: output error GPTQ %.4g, RTN on the grid %.4g", name, actOrder, ours, rtn)
			assert.Less(t, ours, 0.8*rtn, "%s act-order %v", name, actOrder)

			prev := runtime.GOMAXPROCS(1)
			l1, v1, _, err := QuantizeOnGrid("l", w, rows, cols, g, h, Options{ActOrder: actOrder})
			runtime.GOMAXPROCS(prev)
			require.NoError(t, err)
			assert.Equal(t, levels, l1)
			assert.Equal(t, values, v1)
		}
	}
}

func TestQuantizeOnGridErrors(t *testing.T) {
	w := randWeights(1, 8*32)
	g := newToyGrid(w, 8, 32)
	_, _, _, err := QuantizeOnGrid("layer.x", w, 8, 32, nil, identityHessian(t, 32), Options{})
	assert.ErrorContains(t, err, "layer.x: no grid")
	_, _, _, err = QuantizeOnGrid("layer.x", w, 8, 32, g, identityHessian(t, 16), Options{})
	assert.ErrorContains(t, err, "Hessian width 16 does not match the layer's 32 input columns")
	bad := append([]float32(nil), w...)
	bad[40] = float32(math.NaN())
	_, _, _, err = QuantizeOnGrid("layer.x", bad, 8, 32, g, identityHessian(t, 32), Options{})
	assert.ErrorContains(t, err, "non-finite weight NaN at row 1, column 8")
}
