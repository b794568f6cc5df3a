package quant

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// halfStep is the bound on |deq - x| for a value inside the quantization range: half a step
// plus a few float32 rounding errors (the division x/scale and the product (q-z)*scale).
func halfStep(scale, x float32) float64 {
	return 0.5*float64(scale)*(1+1e-6) + 4*math.Abs(float64(x))*0x1p-24
}

func TestPropertiesEveryScheme(t *testing.T) {
	const rows, cols = 24, 128
	w := testMatrix(1, rows, cols)
	for _, s := range allSchemes() {
		t.Run(s.String(), func(t *testing.T) {
			q, err := Quantize("w", w, rows, cols, s, SearchOptions{Method: SearchMax})
			require.NoError(t, err)
			require.NoError(t, q.Validate())
			levels := q.Levels()
			deq := Dequantize(q)
			qlo, qhi := s.QRange()
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					i := r*cols + c
					require.GreaterOrEqual(t, levels[i], qlo)
					require.LessOrEqual(t, levels[i], qhi)
					sc, z := q.ScaleAt(r, c)
					require.Equal(t, float32(levels[i]-z)*sc, deq[i], "dequantized (%d,%d)", r, c)
					// The max search clips nothing, so every value is within half a step.
					require.LessOrEqual(t, math.Abs(float64(deq[i]-w[i])), halfStep(sc, w[i]), "(%d,%d) x=%v scale=%v", r, c, w[i], sc)
				}
			}
			// Requantizing the dequantized tensor with the same params gives the same
			// levels, and so the same values.
			q2, err := QuantizeWithParams("w", deq, rows, cols, s, q.Scales, q.Zeros)
			require.NoError(t, err)
			assert.Equal(t, q.Data, q2.Data)
			assert.Equal(t, deq, Dequantize(q2))
		})
	}
}

// Clipped searches keep every level in range and every unclipped value within half a step.
func TestClippedSearchBounds(t *testing.T) {
	const rows, cols = 8, 64
	w := testMatrix(2, rows, cols)
	for _, s := range allSchemes() {
		for _, opt := range []SearchOptions{{Method: SearchPercentile, Percentile: 99}, {Method: SearchMSE}} {
			t.Run(s.String()+"/"+opt.Method.String(), func(t *testing.T) {
				q, err := Quantize("w", w, rows, cols, s, opt)
				require.NoError(t, err)
				levels, deq := q.Levels(), Dequantize(q)
				qlo, qhi := s.QRange()
				for i, x := range w {
					r, c := i/cols, i%cols
					require.GreaterOrEqual(t, levels[i], qlo)
					require.LessOrEqual(t, levels[i], qhi)
					sc, _ := q.ScaleAt(r, c)
					if levels[i] != qlo && levels[i] != qhi { // not saturated
						require.LessOrEqual(t, math.Abs(float64(deq[i]-x)), halfStep(sc, x))
					}
				}
			})
		}
	}
}

func TestInt4PackRoundTrip(t *testing.T) {
	r := testutil.Rand(3)
	for _, sym := range []bool{true, false} {
		for _, cols := range []int{1, 7, 8, 33} {
			s := Scheme{Bits: 4, Symmetric: sym, Granularity: PerChannel}
			qlo, qhi := s.QRange()
			const rows = 5
			levels := make([]int32, rows*cols)
			for i := range levels {
				levels[i] = qlo + int32(r.IntN(int(qhi-qlo+1)))
			}
			levels[0], levels[len(levels)-1] = qlo, qhi
			scales := make([]float32, rows)
			var zeros []int32
			for i := range scales {
				scales[i] = 1
			}
			if !sym {
				zeros = make([]int32, rows)
			}
			q, err := NewQTensor("p", s, rows, cols, levels, scales, zeros)
			require.NoError(t, err)
			assert.Len(t, q.Data, rows*((cols+1)/2))
			assert.Equal(t, levels, q.Levels(), "sym=%v cols=%d", sym, cols)
			if sym { // signed nibbles are exactly tensor.I4's layout
				vals := make([]int8, len(levels))
				for i, v := range levels {
					vals[i] = int8(v)
				}
				packed, err := tensor.PackInt4Rows(vals, rows, cols)
				require.NoError(t, err)
				assert.Equal(t, packed, q.Data)
			}
		}
	}
	_, err := NewQTensor("p", Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel}, 1, 2, []int32{3, 8}, []float32{1}, nil)
	require.ErrorContains(t, err, "level 8 at row 0, col 1 outside [-8, 7]")
}

func TestAllZeroChannelAndGroup(t *testing.T) {
	const rows, cols = 4, 64
	w := testMatrix(4, rows, cols)
	for c := 0; c < cols; c++ {
		w[1*cols+c] = 0 // an all-zero channel
	}
	for c := 32; c < 64; c++ {
		w[2*cols+c] = 0 // an all-zero group in an all-positive row
	}
	for _, s := range allSchemes() {
		for _, m := range []SearchMethod{SearchMax, SearchPercentile, SearchMSE} {
			t.Run(s.String()+"/"+m.String(), func(t *testing.T) {
				q, err := Quantize("z", w, rows, cols, s, SearchOptions{Method: m})
				require.NoError(t, err)
				for _, sc := range q.Scales {
					require.False(t, math.IsInf(float64(sc), 0) || math.IsNaN(float64(sc)) || sc <= 0)
				}
				deq := Dequantize(q)
				for c := 0; c < cols; c++ {
					require.Equal(t, float32(0), deq[cols+c], "zero channel col %d", c)
					if s.Granularity != PerTensor && c >= 32 {
						require.Equal(t, float32(0), deq[2*cols+c], "zero group col %d", c)
					}
				}
				if s.Granularity == PerChannel {
					sc, z := q.ScaleAt(1, 0)
					assert.Equal(t, float32(1), sc)
					assert.Equal(t, int32(0), z)
				}
			})
		}
	}
	// A whole tensor of zeros too.
	for _, s := range allSchemes() {
		q, err := Quantize("z", make([]float32, 64), 2, 32, s, SearchOptions{Method: SearchMSE})
		require.NoError(t, err)
		assert.Equal(t, make([]float32, 64), Dequantize(q))
	}
}

// Subnormal-only groups used to get scale 0 (amax/7.5 underflows), which
// QuantizeWithParams rejects and which would divide by zero; they now get scale 1 like zeros.
func TestSubnormalGroup(t *testing.T) {
	tiny := float32(math.SmallestNonzeroFloat32)
	w := []float32{tiny, -tiny, 0, tiny, 1, -2, 3, 4}
	for _, s := range allSchemes() {
		if s.Granularity == PerGroup {
			s.GroupSize = 4
		}
		q, err := Quantize("tiny", w, 2, 4, s, SearchOptions{})
		require.NoError(t, err, s.String())
		deq := Dequantize(q)
		for c := 0; c < 4 && s.Granularity != PerTensor; c++ {
			assert.Equal(t, float32(0), deq[c], "%s col %d", s, c)
		}
	}
}

func TestNonFiniteNamesElement(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		w := testMatrix(5, 4, 64)
		w[2*64+33] = bad
		w[3*64+1] = bad // a later one must not be the one reported
		want := fmt.Sprintf("tensor %q: non-finite value %v at row 2, col 33", "blk.0.wq", bad)
		for _, s := range allSchemes() {
			_, _, err := GroupRanges("blk.0.wq", w, 4, 64, s)
			require.ErrorContains(t, err, want)
			for _, m := range []SearchMethod{SearchMax, SearchPercentile, SearchMSE} {
				_, err = Quantize("blk.0.wq", w, 4, 64, s, SearchOptions{Method: m})
				require.ErrorContains(t, err, want, "%s %s", s, m)
			}
			scales, zeros := unitParams(t, s, 4, 64)
			_, err = QuantizeWithParams("blk.0.wq", w, 4, 64, s, scales, zeros)
			require.ErrorContains(t, err, want)
		}
	}
}

func TestShapeAndGroupErrors(t *testing.T) {
	g := Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 32}
	_, err := Quantize("layers.3.mlp", make([]float32, 200), 2, 100, g, SearchOptions{})
	require.ErrorContains(t, err, `tensor "layers.3.mlp"`)
	require.ErrorContains(t, err, "100 input columns do not divide by group size 32")

	_, err = Quantize("x", make([]float32, 10), 3, 4, g, SearchOptions{})
	require.ErrorContains(t, err, `tensor "x": 10 values for shape 3x4`)
	_, _, err = GroupRanges("x", nil, 0, 4, g)
	require.ErrorContains(t, err, "empty")
	for _, b := range []int{0, 2, 9, 16} {
		_, err = Quantize("x", make([]float32, 8), 2, 4, Scheme{Bits: b, Granularity: PerChannel}, SearchOptions{})
		require.ErrorContains(t, err, fmt.Sprintf("bits must be 3 to 8, got %d", b))
	}

	c := Scheme{Bits: 8, Granularity: PerChannel}
	w := make([]float32, 8)
	_, err = QuantizeWithParams("x", w, 2, 4, c, []float32{1}, []int32{0})
	require.ErrorContains(t, err, "1 scales for w8ca (want 2)")
	_, err = QuantizeWithParams("x", w, 2, 4, c, []float32{1, 1}, nil)
	require.ErrorContains(t, err, "0 zero points")
	_, err = QuantizeWithParams("x", w, 2, 4, c, []float32{1, 0}, []int32{0, 0})
	require.ErrorContains(t, err, "scale 1 is 0")
	_, err = QuantizeWithParams("x", w, 2, 4, c, []float32{1, float32(math.NaN())}, []int32{0, 0})
	require.ErrorContains(t, err, "scale 1 is NaN")
	_, err = QuantizeWithParams("x", w, 2, 4, c, []float32{1, 1}, []int32{0, 256})
	require.ErrorContains(t, err, "zero point 256 at 1 outside [0, 255]")
	_, err = Quantize("x", w, 2, 4, c, SearchOptions{Method: SearchPercentile, Percentile: 30})
	require.ErrorContains(t, err, "percentile 30 out of range")
	_, err = Quantize("x", w, 2, 4, c, SearchOptions{Method: 99})
	require.ErrorContains(t, err, "unknown search method")

	sym := Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}
	_, err = QuantizeWithParams("x", w, 2, 4, sym, []float32{1, 1}, []int32{0})
	require.ErrorContains(t, err, "1 zero points for symmetric w8c")
	_, err = QuantizeWithParams("x", w, 2, 4, sym, []float32{1, 1}, []int32{0, 3})
	require.ErrorContains(t, err, "given zero point 3 at 1")
	q, err := QuantizeWithParams("x", w, 2, 4, sym, []float32{1, 1}, []int32{0, 0})
	require.NoError(t, err)
	assert.Nil(t, q.Zeros)

	// An asymmetric range wider than float32 overflows the scale: an error, not Inf levels.
	_, err = Quantize("huge", []float32{-3e38, 3e38}, 1, 2, Scheme{Bits: 8, Granularity: PerChannel}, SearchOptions{})
	require.ErrorContains(t, err, `tensor "huge": scale 0 is +Inf`)

	bad := &QTensor{Name: "q", Scheme: c, Rows: 2, Cols: 4, Groups: 1, Data: make([]byte, 7), Scales: []float32{1, 1}, Zeros: []int32{0, 0}}
	require.ErrorContains(t, bad.Validate(), "7 data bytes")
	assert.Nil(t, Dequantize(bad))
	assert.Nil(t, bad.Levels())
}

// Results are the same bits whatever the number of workers.
func TestDeterministicAcrossWorkers(t *testing.T) {
	const rows, cols = 70, 96
	w := testMatrix(6, rows, cols)
	run := func(procs int) []*QTensor {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		var out []*QTensor
		for _, s := range allSchemes() {
			for _, m := range []SearchMethod{SearchMax, SearchPercentile, SearchMSE} {
				q, err := Quantize("w", w, rows, cols, s, SearchOptions{Method: m})
				require.NoError(t, err)
				out = append(out, q)
			}
		}
		return out
	}
	one, many := run(1), run(5)
	for i := range one {
		assert.Equal(t, one[i].Scales, many[i].Scales)
		assert.Equal(t, one[i].Zeros, many[i].Zeros)
		assert.Equal(t, one[i].Data, many[i].Data)
	}
}

// CompareTensor agrees with Compare on the flattened values to float64 rounding, 1e-11
// relative for sums of 28800 terms (its
// sums are grouped by blocks of rows), MaxAbs exactly; Signal and Noise are the sums behind
// SQNR and MSE. The rows (300) span many blocks, so the grouping matters.
func TestCompareTensorMatchesCompare(t *testing.T) {
	const rows, cols = 300, 96
	w := testMatrix(10, rows, cols)
	for dt, tc := range tensorCases(w, rows, cols) {
		for _, s := range allSchemes() {
			q, err := QuantizeTensor("w", tc.t, s, SearchOptions{})
			require.NoError(t, err)
			deq := Dequantize(q)
			want, err := CompareChecked(tc.vals, deq)
			require.NoError(t, err)
			var sig, noise float64
			for i, r := range tc.vals {
				sig += float64(r) * float64(r)
				d := float64(deq[i]) - float64(r)
				noise += d * d
			}
			got, err := CompareTensor("w", tc.t, q)
			require.NoError(t, err)
			name := dt + "/" + s.String()
			assert.Equal(t, int64(rows*cols), got.Elements, name)
			assert.Equal(t, want.MaxAbs, got.MaxAbs, name)
			assert.InEpsilon(t, want.MSE, got.MSE, 1e-11, name)
			assert.InEpsilon(t, want.SQNRdB, got.SQNRdB, 1e-11, name)
			assert.InDelta(t, want.Cosine, got.Cosine, 1e-11, name)
			assert.InEpsilon(t, sig, got.Signal, 1e-11, name)
			assert.InEpsilon(t, noise, got.Noise, 1e-11, name)
			assert.InEpsilon(t, got.Noise/float64(rows*cols), got.MSE, 1e-15, name)
		}
	}
}

// Hand case: ref [[1, -2], [0, 4]] against levels that reconstruct [[1, -1], [0, 4]]:
// noise 1, signal 21, MSE 1/4, max error 1, cosine 19/sqrt(21*18).
func TestCompareTensorHand(t *testing.T) {
	ref := tensor.FromF32([]float32{1, -2, 0, 4}, 2, 2)
	s := Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel}
	q, err := QuantizeWithParams("h", []float32{1, -1, 0, 4}, 2, 2, s, []float32{1, 1}, nil)
	require.NoError(t, err)
	got, err := CompareTensor("h", ref.Convert(tensor.BF16), q)
	require.NoError(t, err)
	assert.Equal(t, 21.0, got.Signal)
	assert.Equal(t, 1.0, got.Noise)
	assert.Equal(t, 0.25, got.MSE)
	assert.Equal(t, 1.0, got.MaxAbs)
	assert.InDelta(t, 10*math.Log10(21), got.SQNRdB, 1e-12)
	assert.InDelta(t, 19/math.Sqrt(21*18), got.Cosine, 1e-15)

	exact, err := CompareTensor("h", tensor.FromF32([]float32{1, -1, 0, 4}, 2, 2), q)
	require.NoError(t, err)
	assert.True(t, math.IsInf(exact.SQNRdB, 1))
	assert.Equal(t, 1.0, exact.Cosine)

	_, err = CompareTensor("h", tensor.New(tensor.F16, 2, 3), q)
	require.ErrorContains(t, err, `tensor "h": reference is 2x3, quantized tensor 2x2`)
	_, err = CompareTensor("h", tensor.New(tensor.I32, 2, 2), q)
	require.ErrorContains(t, err, "dtype I32 is not F32, F16 or BF16")
	_, err = CompareTensor("h", ref, &QTensor{Name: "bad", Scheme: s, Rows: 2, Cols: 2, Groups: 1})
	require.ErrorContains(t, err, "0 data bytes")
}

// The report's sums are grouped by fixed blocks of rows: the same bits for any worker count.
func TestCompareTensorDeterministicAcrossWorkers(t *testing.T) {
	const rows, cols = 300, 96
	tc := tensorCases(testMatrix(11, rows, cols), rows, cols)["BF16"]
	q, err := QuantizeTensor("w", tc.t, Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}, SearchOptions{})
	require.NoError(t, err)
	run := func(procs int) TensorError {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		e, err := CompareTensor("w", tc.t, q)
		require.NoError(t, err)
		return e
	}
	assert.Equal(t, run(1), run(7))
}

// groupMinMax must give the builtins' bits (signed zeros included) on any finite group,
// and the first NaN/Inf otherwise.
func TestGroupMinMaxMatchesBuiltins(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 0x1p-149, -0x1p-149, 0x1p-126, -0x1p-126,
		math.MaxFloat32, -math.MaxFloat32, 1, -1, 0.5, -0.5}
	r := testutil.Rand(12)
	for trial := 0; trial < 2000; trial++ {
		n := 1 + r.IntN(9)
		vals := make([]float32, n)
		for i := range vals {
			if r.IntN(2) == 0 {
				vals[i] = special[r.IntN(len(special))]
			} else {
				vals[i] = math.Float32frombits(r.Uint32() & 0xff7fffff) // finite: exponent < 255
			}
		}
		wantMn, wantMx := vals[0], vals[0]
		for _, x := range vals {
			wantMn, wantMx = min(wantMn, x), max(wantMx, x)
		}
		mn, mx, bad := groupMinMax(vals)
		require.Equal(t, -1, bad, "%v", vals)
		require.Equal(t, math.Float32bits(wantMn), math.Float32bits(mn), "min of %v", vals)
		require.Equal(t, math.Float32bits(wantMx), math.Float32bits(mx), "max of %v", vals)

		for _, nf := range []float32{float32(math.NaN()), -float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			at := r.IntN(n)
			withBad := append([]float32(nil), vals...)
			withBad[at] = nf
			_, _, bad = groupMinMax(withBad)
			require.Equal(t, at, bad, "%v", withBad)
		}
	}
}

// level's float32 rounding trick agrees with QuantizeValue on ties, near-ties, huge
// quotients (clamped), quotients that overflow to Inf, subnormal scales and random values.
func TestLevelMatchesQuantizeValue(t *testing.T) {
	r := testutil.Rand(15)
	var xs []float32
	for k := -300; k <= 300; k++ {
		tie := float32(k) + 0.5
		xs = append(xs, tie, math.Nextafter32(tie, 0), math.Nextafter32(tie, 1000), float32(k), -tie)
	}
	xs = append(xs, 0x1p22, -0x1p22, 0x1p23+1, -0x1p23-1, 3e38, -3e38, 0, float32(math.Copysign(0, -1)), 0x1p-149, -0.3)
	for i := 0; i < 20000; i++ {
		xs = append(xs, math.Float32frombits(r.Uint32()&0xff7fffff))
	}
	scales := []float32{1, 0.5, 0.25, 3, 1.0 / 7.5, 0.0137, 1e-30, 0x1p-149, 3e38}
	for _, s := range allSchemes() {
		qlo, qhi := s.QRange()
		zeros := []int32{0}
		if !s.Symmetric {
			zeros = []int32{0, 1, qhi / 2, qhi}
		}
		for _, sc := range scales {
			for _, z := range zeros {
				for _, x := range xs {
					if want, got := s.QuantizeValue(x, sc, z), int32(level(x, sc, float32(z), float32(qlo), float32(qhi))); got != want {
						require.Equal(t, want, got, "%s x=%v scale=%v zero=%d", s, x, sc, z)
					}
				}
			}
		}
	}
}
