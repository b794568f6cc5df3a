package gptq

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// searchGroupRef is the act-mse search one candidate at a time, the reference
// searchGroupH must equal.
func searchGroupRef(s quant.Scheme, vals []float32, nr, gs int, hg []float64) (float32, int32) {
	lo, hi := groupRange(vals)
	return searchGroupEach(s, vals, nr, gs, hg, lo, hi, make([]float64, gs))
}

// Sixteen candidates per pass over H choose what one at a time chooses, and every error has
// the one-at-a-time bits, for each width, sym/asym, several rows (per tensor) and groups
// with zero errors (a constant group quantizes exactly).
func TestSearchGroupFourAtATimeEqualsOneAtATime(t *testing.T) {
	r := testutil.Rand(11)
	for _, s := range allWidthSchemes() {
		for _, sh := range [][2]int{{1, 7}, {1, 32}, {3, 16}, {1, 64}} {
			nr, gs := sh[0], sh[1]
			x := correlatedInputs(r, 4*gs, gs)
			hg := hessianOf(t, x, 4*gs, gs).Matrix()
			vals := testutil.Gaussian(r, nr*gs, 1)
			if gs == 7 {
				for i := range vals[:gs] {
					vals[i] = 0.5 // constant: zero error at full range
				}
			}
			wantS, wantZ := searchGroupRef(s, vals, nr, gs, hg)
			gotS, gotZ := searchGroup(s, vals, nr, gs, hg, ClipActMSE, nil)
			require.Equal(t, math.Float32bits(wantS), math.Float32bits(gotS), "%v %v scale", s, sh)
			require.Equal(t, wantZ, gotZ, "%v %v zero", s, sh)

			lo, hi := groupRange(vals)
			var sc [lanes]float32
			var z [lanes]int32
			for c := range sc {
				sc[c], z[c] = s.ComputeParams(float32(lo*clipRatio(3*c)), float32(hi*clipRatio(3*c)))
			}
			got := groupErrors16(s, vals, nr, gs, hg, &sc, &z, make([]float64, lanes*gs))
			for c := range sc {
				want := groupError(s, vals, nr, gs, hg, sc[c], z[c], make([]float64, gs))
				require.Equal(t, math.Float64bits(want), math.Float64bits(got[c]), "%v %v candidate %d", s, sh, c)
			}
		}
	}
}

// go test -run '^$' -bench ActMSESearch ./gptq/: one group of 64 with its H block, the
// search sixteen candidates per pass against one at a time (same result).
func BenchmarkActMSESearch(b *testing.B) {
	r := testutil.Rand(3)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 64}
	hg := hessianOf(b, correlatedInputs(r, 256, 64), 256, 64).Matrix()
	vals := testutil.Gaussian(r, 64, 1)
	b.Run("one-at-a-time", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			searchGroupRef(s, vals, 1, 64, hg)
		}
	})
	b.Run("sixteen-at-a-time", func(b *testing.B) {
		e := make([]float64, lanes*64)
		for i := 0; i < b.N; i++ {
			searchGroup(s, vals, 1, 64, hg, ClipActMSE, e)
		}
	})
}

// The lane kernel gives dot's bits in every lane (the AVX2 kernel and its Go twin), and so
// quadForm16 gives quadForm's and OutputError the per-row sum's.
func TestLanesEqualDot(t *testing.T) {
	r := testutil.Rand(5)
	for _, n := range []int{1, 2, 15, 64, 129} {
		h := make([]float64, n*n)
		for i, v := range testutil.Gaussian(r, n*n, 1) {
			h[i] = float64(v)
		}
		for i := 0; i < n; i++ { // symmetric
			for j := 0; j < i; j++ {
				h[i*n+j] = h[j*n+i]
			}
		}
		e := make([]float64, n*lanes)
		vecs := make([][]float64, lanes)
		for c := range vecs {
			vecs[c] = make([]float64, n)
			for j, v := range testutil.Gaussian(r, n, 1) {
				if (j+c)%5 == 0 {
					v = 0 // zero terms are skipped by quadForm
				}
				vecs[c][j], e[j*lanes+c] = float64(v), float64(v)
			}
		}
		var kern, twin [lanes]float64
		dotLanes16(h[:n], e, &kern)
		dotLanes16Go(h[:n], e, &twin)
		q := quadForm16(h, e, n)
		for c := range vecs {
			want := dot(h[:n], vecs[c])
			require.Equal(t, math.Float64bits(want), math.Float64bits(kern[c]), "n %d lane %d", n, c)
			require.Equal(t, math.Float64bits(want), math.Float64bits(twin[c]), "n %d lane %d (Go)", n, c)
			require.Equal(t, math.Float64bits(quadForm(h, vecs[c])), math.Float64bits(q[c]), "n %d lane %d quadForm", n, c)
		}
	}
}

func TestOutputErrorIsTheSumOfRowQuadForms(t *testing.T) {
	r := testutil.Rand(9)
	rows, cols := 37, 24 // rows: two full passes of sixteen and a partial one
	x := correlatedInputs(r, 96, cols)
	h := hessianOf(t, x, 96, cols)
	w, wq := testutil.Gaussian(r, rows*cols, 1), testutil.Gaussian(r, rows*cols, 1)
	var want float64
	hm := h.Matrix()
	for row := 0; row < rows; row++ {
		e := make([]float64, cols)
		for c := range e {
			e[c] = float64(w[row*cols+c]) - float64(wq[row*cols+c])
		}
		want += quadForm(hm, e)
	}
	require.Equal(t, math.Float64bits(want), math.Float64bits(OutputError(w, wq, rows, cols, h)))
}

// One factor serves several schemes of a layer: the cached runs give Quantize's bits, and
// a second Hessian is factored anew.
func TestFactorCacheGivesQuantizesBits(t *testing.T) {
	r := testutil.Rand(13)
	rows, cols := 24, 128
	h1 := hessianOf(t, correlatedInputs(r, 256, cols), 256, cols)
	h2 := hessianOf(t, correlatedInputs(r, 256, cols), 256, cols)
	w := testutil.Gaussian(r, rows*cols, 1)
	opt := Options{ActOrder: true, Clip: ClipActMSE}
	var c FactorCache
	for _, h := range []*Hessian{h1, h1, h2, h1} {
		for _, s := range schemes() {
			want, _, err := Quantize("l", w, rows, cols, s, h, opt)
			require.NoError(t, err)
			got, _, err := QuantizeWith(&c, "l", w, rows, cols, s, h, opt)
			require.NoError(t, err)
			require.Equal(t, want, got, "%v", s)
		}
	}
}
