package gguf

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// autoqQuantize runs autoq's own path for scheme s: search, round the scales to F16, then
// choose the levels with the rounded scales.
func autoqQuantize(t *testing.T, w []float32, rows, cols int, s quant.Scheme) *quant.QTensor {
	t.Helper()
	scales, zeros, err := quant.SearchParams("w", w, rows, cols, s, quant.SearchOptions{Method: quant.SearchMSE})
	require.NoError(t, err)
	scales, err = RoundScales("w", scales)
	require.NoError(t, err)
	q, err := quant.QuantizeWithParams("w", w, rows, cols, s, scales, zeros)
	require.NoError(t, err)
	return q
}

// decodeLevels stores l in typ's blocks, encodes them and decodes the bytes as llama.cpp
// would: the weights a GGUF file of l gives.
func decodeLevels(t *testing.T, typ Type, l *Levels) []float32 {
	t.Helper()
	q, err := FromLevels(typ, l)
	require.NoError(t, err)
	raw, err := q.Encode()
	require.NoError(t, err)
	got, err := Dequantize(l.Name, typ, l.Rows, l.Cols, raw)
	require.NoError(t, err)
	return got
}

func TestSymmetricLevelsDecodeBitExact(t *testing.T) {
	const rows, cols = 8, 128
	w := testutil.StudentT(testutil.Rand(1), rows*cols, 4)
	for _, c := range []struct {
		bits int
		typ  Type
	}{{8, Q8_0}, {4, Q4_0}} {
		s := quant.Scheme{Bits: c.bits, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}
		qt := autoqQuantize(t, w, rows, cols, s)
		l, err := LevelsFromQTensor(qt)
		require.NoError(t, err)
		typ, err := LegacyType(c.bits, true)
		require.NoError(t, err)
		require.Equal(t, c.typ, typ)
		got := decodeLevels(t, typ, l)
		assert.Equal(t, quant.Dequantize(qt), got, "%s decodes to autoq's dequantized weights bit for bit", typ)
	}
}

func TestAsymmetricLevelsDecodeWithinStatedBound(t *testing.T) {
	const rows, cols = 8, 128
	w := testutil.Laplace(testutil.Rand(2), rows*cols, 0.05)
	for i := range w {
		w[i] += 0.02 // off-centre, so the zero points vary
	}
	s := quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}
	qt := autoqQuantize(t, w, rows, cols, s)
	l, err := LevelsFromQTensor(qt)
	require.NoError(t, err)
	got := decodeLevels(t, Q4_1, l)
	want := quant.Dequantize(qt)
	exact := 0
	for i := range want {
		sc, z := qt.ScaleAt(i/cols, i%cols)
		zd := float64(z) * float64(sc)
		bound := f16HalfUlp(zd) + math.Abs(float64(want[i]))*0x1p-24 + 0x1p-149
		require.LessOrEqual(t, math.Abs(float64(got[i])-float64(want[i])), bound, "element %d (z=%d, d=%v)", i, z, sc)
		if got[i] == want[i] {
			exact++
		}
	}
	t.Logf("Q4_1: %d of %d weights bit-exact, the rest within ½ulp_F16(z·d)", exact, len(want))

	// On the block's own grid the weights are exact by construction, and no farther from w
	// than autoq's levels.
	g, err := GridFromParams("w", Q4_1, rows, cols, qt.Scales, qt.Zeros)
	require.NoError(t, err)
	rq, err := g.RoundNearest(w)
	require.NoError(t, err)
	vals, err := rq.Dequantize()
	require.NoError(t, err)
	for i := range w {
		require.LessOrEqual(t, absDiff(vals[i], w[i]), absDiff(got[i], w[i])+1e-9)
	}
}

// f16HalfUlp is half the F16 spacing at |v| (subnormal spacing 2^-24 below 2^-14).
func f16HalfUlp(v float64) float64 {
	v = math.Abs(v)
	if v < 0x1p-14 {
		return 0x1p-25
	}
	_, e := math.Frexp(v) // v = f * 2^e, f in [0.5, 1)
	return math.Ldexp(1, e-1-10) / 2
}

func TestFiveBitLevels(t *testing.T) {
	r := testutil.Rand(3)
	const rows, cols = 2, 64
	scales, err := RoundScales("w5", []float32{0.011, 0.0203, 0.5, 0.0007})
	require.NoError(t, err)
	for _, sym := range []bool{true, false} {
		l := &Levels{Name: "w5", Rows: rows, Cols: cols, Bits: 5, Symmetric: sym, GroupSize: 32, Scales: scales, Q: make([]int32, rows*cols)}
		lo, hi := int32(-16), int32(15)
		if !sym {
			lo, hi = 0, 31
			l.Zeros = []int32{0, 31, 16, 7}
		}
		for i := range l.Q {
			l.Q[i] = lo + r.Int32N(hi-lo+1)
		}
		l.Q[0], l.Q[1] = lo, hi
		typ, err := LegacyType(5, sym)
		require.NoError(t, err)
		got := decodeLevels(t, typ, l)
		for i, v := range l.Q {
			g := i / 32
			z := int32(0)
			if !sym {
				z = l.Zeros[g]
			}
			want := quant.DequantizeValue(v, scales[g], z)
			if sym {
				require.Equal(t, want, got[i], "Q5_0 element %d", i)
			} else {
				require.LessOrEqual(t, math.Abs(float64(got[i]-want)), f16HalfUlp(float64(z)*float64(scales[g]))+math.Abs(float64(want))*0x1p-24+0x1p-149, "Q5_1 element %d", i)
			}
		}
	}
}

func TestFromLevelsRefusesWhatTheBlockCannotHold(t *testing.T) {
	l := &Levels{Name: "w", Rows: 1, Cols: 32, Bits: 4, Symmetric: true, GroupSize: 32, Q: make([]int32, 32), Scales: []float32{0.1}}
	_, err := FromLevels(Q4_0, l)
	assert.ErrorContains(t, err, `tensor "w": row 0, group 0: scale 0.1 is not an F16 value; round the scales with RoundScales before choosing the levels`)
	l.Scales = []float32{0.125}
	_, err = FromLevels(Q4_1, l)
	assert.ErrorContains(t, err, "are stored as Q4_0, not Q4_1")
	l.GroupSize = 64
	_, err = FromLevels(Q4_0, l)
	assert.ErrorContains(t, err, "group size 64")
	l.GroupSize, l.Q[3] = 32, 9
	_, err = FromLevels(Q4_0, l)
	assert.ErrorContains(t, err, "level 9 at row 0, col 3 outside [-8, 7]")
	_, err = LegacyType(6, true)
	assert.ErrorContains(t, err, "no GGUF block format stores 6-bit symmetric levels")
	_, err = RoundScales("w", []float32{1e-9})
	assert.ErrorContains(t, err, `tensor "w": scale 0`)

	qt, err := quant.Quantize("pc", make([]float32, 64), 2, 32, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{})
	require.NoError(t, err)
	_, err = LevelsFromQTensor(qt)
	assert.ErrorContains(t, err, `tensor "pc": scheme w8c is not per group`)
}
