package gguf

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allBlockTypes = []Type{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K}

func TestRefQuantizeHandCases(t *testing.T) {
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j - 16) // -16 .. 15: the largest magnitude is -16
	}
	q, err := RefQuantize("h", Q4_0, x, 1, 32, nil)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x4000), q.D[0], "d = max/-8 = -16/-8 = 2")
	for j, c := range q.Q {
		// code = min(15, trunc(x/2 + 8.5)): -16 -> 0, -15 -> 1 (0.5+... = 1.0), 15 -> 16 -> 15
		want := min(15, int(math.Trunc(float64(x[j])/2+8.5)))
		assert.Equal(t, int8(want), c, "x=%v", x[j])
	}
	assert.Equal(t, int8(0), q.Q[0])
	assert.Equal(t, int8(15), q.Q[31])

	x8 := make([]float32, 32)
	x8[0], x8[1], x8[2], x8[3] = 127, -63.5, 0.5, -0.5
	q, err = RefQuantize("h", Q8_0, x8, 1, 32, nil)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x3c00), q.D[0], "d = amax/127 = 1")
	assert.Equal(t, []int8{127, -64, 1, -1, 0}, q.Q[:5], "roundf: halves away from zero")

	x1 := make([]float32, 32)
	for j := range x1 {
		x1[j] = 1 + float32(j%16)*0.5 // min 1, max 8.5: d = 7.5/15 = 0.5
	}
	q, err = RefQuantize("h", Q4_1, x1, 1, 32, nil)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x3800), q.D[0])
	assert.Equal(t, uint16(0x3c00), q.M[0], "m = min = 1")
	for j, c := range q.Q {
		assert.Equal(t, int8(j%16), c)
	}
}

// representable builds rows that lie exactly on a legacy grid whose parameters the
// reference quantizer recovers exactly (powers of two, extreme codes present).
func representable(t Type, rows int, seed uint64) []float32 {
	r := testutil.Rand(seed)
	w := make([]float32, rows*64)
	lo, hi := codeRange(t)
	if t == Q8_0 {
		lo = -127 // amax/127 recovers d only when no level is -128
	}
	for b := 0; b < rows*2; b++ {
		d := float32(math.Ldexp(1, -3-r.IntN(5)))
		m := float32(-(1 + r.IntN(4))) * d * 4
		for j := 0; j < 32; j++ {
			c := lo + r.Int32N(hi-lo+1)
			if j == 0 {
				c = lo
			}
			if j == 1 {
				c = hi
			}
			var v float32
			switch t {
			case Q8_0:
				v = float32(c) * d
			case Q4_0, Q5_0:
				v = float32(c-(hi+1)/2) * d
			case Q4_1, Q5_1:
				v = float32(c)*d + m
			}
			w[b*32+j] = v
		}
	}
	return w
}

func TestRefQuantizeIsIdempotentOnRepresentableRows(t *testing.T) {
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1} {
		w := representable(typ, 4, uint64(typ))
		q, err := RefQuantize("r", typ, w, 4, 64, nil)
		require.NoError(t, err)
		vals, err := q.Dequantize()
		require.NoError(t, err)
		assert.Equal(t, w, vals, "%s reproduces rows already on its grid", typ)
		again, err := RefQuantize("r", typ, vals, 4, 64, nil)
		require.NoError(t, err)
		assert.Equal(t, q.Q, again.Q, typ.String())
	}
}

func TestRefQuantizeErrorBounds(t *testing.T) {
	const rows, cols = 16, 512
	w := testutil.Gaussian(testutil.Rand(9), rows*cols, 1)
	// Relative RMS error on Gaussian data: a uniform b-bit grid over about ±3 sigma gives
	// roughly 6/2^b/sqrt(12) (0.11 at 4 bits, 0.054 at 5); block-wise ranges do better.
	limits := map[Type]float64{Q8_0: 0.007, Q4_0: 0.1, Q4_1: 0.09, Q5_0: 0.05, Q5_1: 0.045, Q4_K: 0.085, Q6_K: 0.021}
	for _, typ := range allBlockTypes {
		q, err := RefQuantize("g", typ, w, rows, cols, nil)
		require.NoError(t, err)
		vals, err := q.Dequantize()
		require.NoError(t, err)
		var se, ss float64
		for i := range w {
			d := float64(vals[i] - w[i])
			se += d * d
			ss += float64(w[i]) * float64(w[i])
		}
		rel := math.Sqrt(se / ss)
		t.Logf("%s: relative RMS error %.4f", typ, rel)
		assert.Less(t, rel, limits[typ], typ.String())
		if typ == Q8_0 { // every element within 0.5 step + the F16 rounding of d
			for i := range w {
				d := float64(f16val(q.D[i/32]))
				require.LessOrEqual(t, math.Abs(float64(vals[i]-w[i])), 0.5*d+127*d*0x1p-11+1e-12)
			}
		}
	}
}

func TestRoundNearestOnChosenGridNeverWorseThanReference(t *testing.T) {
	const rows, cols = 8, 512
	w := testutil.StudentT(testutil.Rand(4), rows*cols, 3)
	for _, typ := range allBlockTypes {
		ref, err := RefQuantize("s", typ, w, rows, cols, nil)
		require.NoError(t, err)
		g, err := ChooseGrid("s", typ, w, rows, cols, nil)
		require.NoError(t, err)
		assert.Equal(t, ref.Grid, *g)
		rtn, err := g.RoundNearest(w)
		require.NoError(t, err)
		a, _ := ref.Dequantize()
		b, _ := rtn.Dequantize()
		same := 0
		for i := range w {
			require.LessOrEqual(t, absDiff(b[i], w[i]), absDiff(a[i], w[i]), "%s element %d", typ, i)
			if a[i] == b[i] {
				same++
			}
		}
		t.Logf("%s: %d of %d codes as llama.cpp's, the rest strictly nearer", typ, same, len(w))
	}
}

func TestImportanceLowersWeightedError(t *testing.T) {
	const rows, cols = 32, 512
	r := testutil.Rand(12)
	w := testutil.Gaussian(r, rows*cols, 1)
	imp := make([]float32, cols)
	for i := range imp {
		imp[i] = float32(math.Exp(2 * r.NormFloat64())) // heavy-tailed column importance
	}
	for _, typ := range []Type{Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K} {
		werr := func(im []float32) float64 {
			q, err := RefQuantize("i", typ, w, rows, cols, im)
			require.NoError(t, err)
			v, _ := q.Dequantize()
			var e float64
			for i := range w {
				d := float64(v[i] - w[i])
				e += float64(imp[i%cols]) * d * d
			}
			return e
		}
		plain, weighted := werr(nil), werr(imp)
		t.Logf("%s: importance-weighted error %.4g without, %.4g with the importance", typ, plain, weighted)
		assert.Less(t, weighted, plain, typ.String())
	}
}

func TestRefQuantizeRefusesBadInput(t *testing.T) {
	_, err := RefQuantize("w", Q4_K, make([]float32, 64*172), 64, 172, nil)
	assert.ErrorContains(t, err, `tensor "w": width 172 is not a multiple of Q4_K's block size 256`)
	w := make([]float32, 32)
	w[7] = float32(math.NaN())
	_, err = RefQuantize("w", Q8_0, w, 1, 32, nil)
	assert.ErrorContains(t, err, "non-finite value NaN at row 0, col 7")
	_, err = RefQuantize("w", Q4_0, make([]float32, 32), 1, 32, make([]float32, 5))
	assert.ErrorContains(t, err, "importance has 5 entries for 32 columns")
}
