package quant

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSearch(t *testing.T) {
	for _, name := range []string{"max", "percentile", "mse"} {
		m, err := ParseSearch(name)
		require.NoError(t, err)
		assert.Equal(t, name, m.String())
	}
	m, _ := ParseSearch("mse")
	assert.Equal(t, SearchMSE, m)
	_, err := ParseSearch("absmax")
	require.ErrorContains(t, err, `unknown search method "absmax"`)
	require.ErrorContains(t, err, "max, mse, percentile")
	assert.Equal(t, "SearchMethod(77)", SearchMethod(77).String())
}

// A method registered from another file (as act-mse will be) is parsed and dispatched.
func TestRegisterSearch(t *testing.T) {
	const m = SearchMethod(250)
	registerSearch(m, "test-fixed", func(name string, w []float32, l Layout, s Scheme, opt SearchOptions) ([]float32, []int32, error) {
		sc := make([]float32, l.NParams())
		for i := range sc {
			sc[i] = opt.ColWeights[0]
		}
		return sc, nil, nil
	})
	got, err := ParseSearch("test-fixed")
	require.NoError(t, err)
	assert.Equal(t, m, got)
	scales, _, err := SearchParams("w", []float32{1, 2, 3, 4}, 2, 2, Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, SearchOptions{Method: m, ColWeights: []float32{0.25}})
	require.NoError(t, err)
	assert.Equal(t, []float32{0.25, 0.25}, scales)
}

// The values -50..49: |x| sorted is 0,1,1,2,2,...,49,49,50 and x sorted is -50..49.
func percentileSet() []float32 {
	w := make([]float32, 100)
	// a scrambled order, so that the search must sort
	for i := range w {
		w[i] = float32((i*37)%100 - 50)
	}
	return w
}

func TestPercentileKnownSet(t *testing.T) {
	w := percentileSet()
	// p = 90, n = 100: k = 90. Symmetric: amax = sorted |x|[89] = 45 (index 2j-1 holds j).
	sym := Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}
	scales, zeros, err := SearchParams("p", w, 1, 100, sym, SearchOptions{Method: SearchPercentile, Percentile: 90})
	require.NoError(t, err)
	assert.Nil(t, zeros)
	assert.Equal(t, []float32{float32(45) / 127.5}, scales)

	// Asymmetric int4: hi = x[89] = 39, lo = x[100-90] = -40; scale = 79/15,
	// zero = rne(40/(79/15)) = rne(7.59) = 8.
	asym := Scheme{Bits: 4, Granularity: PerChannel}
	scales, zeros, err = SearchParams("p", w, 1, 100, asym, SearchOptions{Method: SearchPercentile, Percentile: 90})
	require.NoError(t, err)
	assert.Equal(t, []float32{float32(79) / 15}, scales)
	assert.Equal(t, []int32{8}, zeros)

	// PerTensor: the same 100 values spread over 4 rows give the same result.
	pt := Scheme{Bits: 4, Granularity: PerTensor}
	scales, zeros, err = SearchParams("p", w, 4, 25, pt, SearchOptions{Method: SearchPercentile, Percentile: 90})
	require.NoError(t, err)
	assert.Equal(t, []float32{float32(79) / 15}, scales)
	assert.Equal(t, []int32{8}, zeros)

	// p = 100 (k = n) is the max search; the default 99.99 on n = 100 rounds k up to 100.
	for _, p := range []float64{100, 0} {
		for _, s := range allSchemes() {
			if s.Granularity == PerGroup {
				s.GroupSize = 25
			}
			a, az, err := SearchParams("p", w, 2, 50, s, SearchOptions{Method: SearchPercentile, Percentile: p})
			require.NoError(t, err)
			b, bz, err := SearchParams("p", w, 2, 50, s, SearchOptions{Method: SearchMax})
			require.NoError(t, err)
			assert.Equal(t, b, a, "%s p=%v", s, p)
			assert.Equal(t, bz, az)
		}
	}
}

func TestPercentileK(t *testing.T) {
	assert.Equal(t, 90, percentileK(90, 100))
	assert.Equal(t, 1, percentileK(0.001, 100)) // at least one
	assert.Equal(t, 128, percentileK(99.99, 128))
	assert.Equal(t, 127, percentileK(99, 128)) // ceil(126.72)
}

// groupErrors returns the squared reconstruction error of each scale group, computed
// independently in float64.
func groupErrors(t *testing.T, q *QTensor, w []float32) []float64 {
	deq := Dequantize(q)
	l := q.Layout()
	errs := make([]float64, l.NParams())
	for i, x := range w {
		d := float64(deq[i]) - float64(x)
		errs[l.Param(i/q.Cols, i%q.Cols)] += d * d
	}
	return errs
}

func TestMSENeverWorseThanMax(t *testing.T) {
	const rows, cols = 16, 128
	r := testutil.Rand(7)
	w := testutil.StudentT(r, rows*cols, 3)
	copy(w, testMatrix(8, 4, cols))
	for _, s := range allSchemes() {
		qm, err := Quantize("w", w, rows, cols, s, SearchOptions{Method: SearchMax})
		require.NoError(t, err)
		qe, err := Quantize("w", w, rows, cols, s, SearchOptions{Method: SearchMSE})
		require.NoError(t, err)
		em, ee := groupErrors(t, qm, w), groupErrors(t, qe, w)
		var tm, te float64
		for g := range em {
			require.LessOrEqual(t, ee[g], em[g]*(1+1e-9), "%s group %d", s, g)
			tm += em[g]
			te += ee[g]
		}
		if s.Bits == 4 { // heavy tails: clipping must pay off at 4 bits
			assert.Less(t, te, tm, "%s: mse %g vs max %g", s, te, tm)
		}
	}
}

// The MSE choice is the best grid candidate: its error is no larger than any other grid
// point's, each evaluated independently in float64.
func TestMSEPicksGridMinimum(t *testing.T) {
	const cols = 64
	w := testutil.Laplace(testutil.Rand(9), 3*cols, 1)
	for _, s := range allSchemes() {
		if s.Granularity == PerGroup {
			continue // the per-channel case covers the group arithmetic
		}
		q, err := Quantize("w", w, 3, cols, s, SearchOptions{Method: SearchMSE})
		require.NoError(t, err)
		lo, hi, err := GroupRanges("w", w, 3, cols, s)
		require.NoError(t, err)
		chosen := groupErrors(t, q, w)
		for g := range lo {
			found := false
			for i := 0; i < MSEGridSteps; i++ {
				r := float32(100-i) / 100
				sc, z := s.ComputeParams(lo[g]*r, hi[g]*r)
				scales := []float32{sc}
				zeros := []int32{z}
				if s.Symmetric {
					zeros = nil
				}
				var e float64
				var vals []float32
				if s.Granularity == PerTensor {
					vals = w
				} else {
					vals = w[g*cols : (g+1)*cols]
				}
				cand, err := QuantizeWithParams("c", vals, 1, len(vals), Scheme{Bits: s.Bits, Symmetric: s.Symmetric, Granularity: PerChannel}, scales, zeros)
				require.NoError(t, err)
				for j, v := range Dequantize(cand) {
					d := float64(v) - float64(vals[j])
					e += d * d
				}
				require.LessOrEqual(t, chosen[g], e*(1+1e-6), "%s group %d: grid point %d is better", s, g, i)
				if sc == q.Scales[g] {
					found = true
				}
			}
			assert.True(t, found, "%s: scale %v is not a grid candidate", s, q.Scales[g])
		}
	}
}

func TestGroupRangesHand(t *testing.T) {
	w := []float32{1, -2, 3, 4, -5, 6, 0, 0.5}
	g := Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 2}
	lo, hi, err := GroupRanges("w", w, 2, 4, g)
	require.NoError(t, err)
	assert.Equal(t, []float32{-2, 3, -5, 0}, lo)
	assert.Equal(t, []float32{1, 4, 6, 0.5}, hi)
	lo, hi, err = GroupRanges("w", w, 2, 4, Scheme{Bits: 8, Granularity: PerTensor})
	require.NoError(t, err)
	assert.Equal(t, []float32{-5}, lo)
	assert.Equal(t, []float32{6}, hi)

	scales, zeros := Params(Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}, []float32{-255, 0}, []float32{1, 0})
	assert.Equal(t, []float32{2, 1}, scales) // 255/127.5 = 2; all-zero -> 1
	assert.Nil(t, zeros)
	scales, zeros = Params(Scheme{Bits: 4, Granularity: PerChannel}, []float32{-3}, []float32{27})
	assert.Equal(t, []float32{2}, scales) // 30/15
	assert.Equal(t, []int32{2}, zeros)    // rne(1.5) = 2
	assert.True(t, math.Abs(float64(scales[0])-2) == 0)
}

// The early exit of mseSearchGroup picks exactly what full sums with a strict < pick,
// ties included (small integer groups have many equal errors).
func TestMSEEarlyExitMatchesFullSums(t *testing.T) {
	r := testutil.Rand(15)
	var groups [][]float32
	for g := 0; g < 40; g++ {
		groups = append(groups, testutil.StudentT(r, 32, 3), testutil.Laplace(r, 32, 1))
		ints := make([]float32, 16)
		for i := range ints {
			ints[i] = float32(r.IntN(5) - 2)
		}
		groups = append(groups, ints)
	}
	groups = append(groups, make([]float32, 8), []float32{3, 3, 3, 3})
	for _, s := range allSchemes() {
		for gi, vals := range groups {
			lo, hi := vals[0], vals[0]
			for _, v := range vals {
				lo, hi = min(lo, v), max(hi, v)
			}
			bi := 0
			var best float64
			for i := 0; i < MSEGridSteps; i++ {
				sc, z := mseCandidate(s, lo, hi, i)
				if e := mseError(s, vals, sc, z); i == 0 || e < best {
					best, bi = e, i
				}
			}
			wantScale, wantZero := mseCandidate(s, lo, hi, bi)
			gotScale, gotZero := mseSearchGroup(s, vals, lo, hi)
			require.Equal(t, wantScale, gotScale, "%s group %d", s, gi)
			require.Equal(t, wantZero, gotZero, "%s group %d", s, gi)
		}
	}
}
