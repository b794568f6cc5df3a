//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// adversarialMatrix fills a rows x cols matrix whose rows cycle through kinds of data that
// stress the arithmetic: gaussian, huge and tiny magnitudes, subnormals, all-zero rows,
// one-signed rows, exact ties (values on half steps), and a lone outlier.
// huge and tiny are scale factors that stay finite (and non-zero) in the target dtype.
func adversarialMatrix(r *rand.Rand, rows, cols int, dt tensor.DType) []float32 {
	huge, tiny := float32(1e37), float32(1e-35)
	if dt == tensor.F16 {
		huge, tiny = 1e4, 1e-6 // F16: max 65504; 1e-6 gives subnormal halves
	}
	w := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		row := w[i*cols : (i+1)*cols]
		g := testutil.Gaussian(r, cols, 1)
		switch i % 9 {
		case 0:
			copy(row, g)
		case 1: // huge
			for c := range row {
				row[c] = g[c] * huge
			}
		case 2: // tiny normal
			for c := range row {
				row[c] = g[c] * tiny
			}
		case 3: // subnormal
			for c := range row {
				row[c] = math.Float32frombits(uint32(r.IntN(1<<23))) * float32(1-2*r.IntN(2))
			}
		case 4: // all zero (with a negative zero)
			if cols > 1 {
				row[1] = float32(math.Copysign(0, -1))
			}
		case 5: // all positive
			for c := range row {
				row[c] = float32(math.Abs(float64(g[c]))) + 0.5
			}
		case 6: // all negative
			for c := range row {
				row[c] = -float32(math.Abs(float64(g[c]))) - 2
			}
		case 7: // small integers and halves: many exact rounding ties
			for c := range row {
				row[c] = float32(r.IntN(33)-16) * 0.5
			}
		case 8: // one outlier among small values
			for c := range row {
				row[c] = g[c] * 0.01
			}
			row[r.IntN(cols)] = 1000
		}
	}
	return w
}

// asDType returns w as a tensor of dtype d (values rounded to d; the comparisons use the
// tensor itself, so both backends see the same values).
func asDType(w []float32, rows, cols int, d tensor.DType) *tensor.Tensor {
	t := tensor.FromF32(append([]float32(nil), w...), rows, cols)
	if d == tensor.F32 {
		return t
	}
	return t.Convert(d)
}

type schemeCase struct {
	s    quant.Scheme
	cols []int
}

func quantCases() []schemeCase {
	var out []schemeCase
	odd := []int{1, 7, 17, 4097, 64}
	for _, bits := range []int{8, 4, 6, 5, 3, 7} {
		for _, sym := range []bool{true, false} {
			out = append(out,
				schemeCase{quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerTensor}, odd},
				schemeCase{quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerChannel}, odd},
				schemeCase{quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 32}, []int{32, 96, 4096}},
				schemeCase{quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 7}, []int{7, 21}},
			)
		}
	}
	return out
}

var dtypes = []tensor.DType{tensor.F32, tensor.F16, tensor.BF16}

// TestQuantizeMatchesCPU runs ranges, the max and mse searches, quantize and dequantize on
// the GPU and the CPU reference for every scheme, dtype and odd shape, bit for bit.
func TestQuantizeMatchesCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(1)
	for _, sc := range quantCases() {
		for _, cols := range sc.cols {
			for _, rows := range []int{1, 9} {
				for _, dt := range dtypes {
					name := fmt.Sprintf("%s/%dx%d/%s", sc.s, rows, cols, dt)
					w := asDType(adversarialMatrix(r, rows, cols, dt), rows, cols, dt)
					t.Run(name, func(t *testing.T) { compareQuant(t, g, name, w, sc.s, cols) })
				}
			}
		}
	}
}

func compareQuant(t *testing.T, g *Backend, name string, w *tensor.Tensor, s quant.Scheme, cols int) {
	groups := 1
	if s.Granularity == quant.PerGroup {
		groups = cols / s.GroupSize
	}
	wantLo, wantHi, err := cpu.GroupRanges(name, w, s)
	require.NoError(t, err)
	gotLo, gotHi, err := g.GroupRanges(name, w, s)
	require.NoError(t, err)
	// min/max are exact; only the sign of a zero may differ (no parameter depends on it).
	require.Empty(t, firstF32Diff(gotLo, wantLo, groups, true), "group lo")
	require.Empty(t, firstF32Diff(gotHi, wantHi, groups, true), "group hi")

	for _, m := range []quant.SearchMethod{quant.SearchMax, quant.SearchMSE} {
		opt := quant.SearchOptions{Method: m}
		wantS, wantZ, err := cpu.SearchParams(name, w, s, opt)
		require.NoError(t, err)
		gotS, gotZ, err := g.SearchParams(name, w, s, opt)
		require.NoError(t, err)
		require.Empty(t, firstF32Diff(gotS, wantS, groups, false), "%v search: scales", m)
		require.Empty(t, firstI32Diff(gotZ, wantZ), "%v search: zero points", m)
		if s.Symmetric {
			require.Nil(t, gotZ)
		}

		wantQ, err := cpu.Quantize(name, w, s, wantS, wantZ)
		require.NoError(t, err)
		gotQ, err := g.Quantize(name, w, s, wantS, wantZ)
		require.NoError(t, err)
		rb := len(wantQ.Data) / max(wantQ.Rows, 1)
		require.Empty(t, firstByteDiff(gotQ.Data, wantQ.Data, rb), "%v: quantized data", m)
		require.Equal(t, wantQ.Groups, gotQ.Groups)
		require.Equal(t, wantQ.Zeros, gotQ.Zeros)
		require.Equal(t, wantQ.Scales, gotQ.Scales)

		wantD, err := cpu.Dequantize(wantQ)
		require.NoError(t, err)
		gotD, err := g.Dequantize(wantQ)
		require.NoError(t, err)
		require.Equal(t, wantD.Shape, gotD.Shape)
		require.Empty(t, firstF32Diff(gotD.F32(), wantD.F32(), cols, false), "%v: dequantized", m)
	}
}

// TestComputeParamsKernel feeds the params kernel adversarial (lo, hi) pairs directly:
// subnormal, huge, one-signed, equal, zero ranges.
func TestComputeParamsKernel(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(2)
	var lo, hi []float32
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-45, -1e-45, 1e-40, 1.17549435e-38, 3.4028235e38, -3.4028235e38,
		0.5, 127.5, 7.5, 1e-30, 1e30, 6.1e-5, 65504}
	for _, a := range special {
		for _, b := range special {
			lo, hi = append(lo, min(a, b)), append(hi, max(a, b))
		}
	}
	for range 20000 {
		a := math.Float32frombits(r.Uint32() & 0xff7fffff) // finite
		b := math.Float32frombits(r.Uint32() & 0xff7fffff)
		if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
			continue
		}
		lo, hi = append(lo, min(a, b)), append(hi, max(a, b))
	}
	n := len(lo)
	var schemes []quant.Scheme
	for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
		schemes = append(schemes, quant.Scheme{Bits: bits, Symmetric: true, Granularity: quant.PerChannel}, quant.Scheme{Bits: bits, Granularity: quant.PerChannel})
	}
	for _, s := range schemes {
		wantS, wantZ := quant.Params(s, lo, hi)
		bs, err := g.bufs(4*n, 4*n, 4*n, 4*n)
		require.NoError(t, err)
		require.NoError(t, bs[0].CopyFromHost(0, f32Bytes(lo)))
		require.NoError(t, bs[1].CopyFromHost(0, f32Bytes(hi)))
		var zb *Buffer
		if !s.Symmetric {
			zb = bs[3]
		}
		require.NoError(t, ComputeParamsDev(g.dev, s, bs[0], bs[1], n, bs[2], zb))
		gotS, err := download[float32](bs[2], n)
		require.NoError(t, err)
		require.Empty(t, firstF32Diff(gotS, wantS, 1, false), "%s scales", s)
		if !s.Symmetric {
			gotZ, err := download[int32](bs[3], n)
			require.NoError(t, err)
			require.Empty(t, firstI32Diff(gotZ, wantZ), "%s zero points", s)
		}
		freeBuffers(bs...)
	}
}

// TestQuantizeBadInputMatchesCPU: NaN/Inf weights and invalid parameters give the CPU
// reference's error (naming tensor and element), never a crash.
func TestQuantizeBadInputMatchesCPU(t *testing.T) {
	g := gpu(t)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, dt := range dtypes {
			w := make([]float32, 3*17)
			for i := range w {
				w[i] = float32(i) - 20
			}
			w[2*17+5] = bad
			x := asDType(w, 3, 17, dt)
			_, _, wantErr := cpu.GroupRanges("bad", x, s)
			_, _, gotErr := g.GroupRanges("bad", x, s)
			require.Error(t, wantErr)
			require.EqualError(t, gotErr, wantErr.Error())
			_, _, gotErr = g.SearchParams("bad", x, s, quant.SearchOptions{Method: quant.SearchMSE})
			require.EqualError(t, gotErr, wantErr.Error())
			scales := []float32{1, 1, 1}
			_, wantErr = cpu.Quantize("bad", x, s, scales, nil)
			_, gotErr = g.Quantize("bad", x, s, scales, nil)
			require.Error(t, wantErr)
			require.EqualError(t, gotErr, wantErr.Error())
		}
	}
	w := tensor.FromF32(make([]float32, 2*8), 2, 8)
	for _, scales := range [][]float32{{1}, {0, 1}, {1, float32(math.NaN())}, {-1, 1}} {
		_, wantErr := cpu.Quantize("p", w, s, scales, nil)
		_, gotErr := g.Quantize("p", w, s, scales, nil)
		require.Error(t, wantErr)
		require.EqualError(t, gotErr, wantErr.Error())
	}
	// Shapes that the group size does not divide.
	gs := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}
	_, _, wantErr := cpu.SearchParams("g", w, gs, quant.SearchOptions{})
	_, _, gotErr := g.SearchParams("g", w, gs, quant.SearchOptions{})
	require.Error(t, wantErr)
	require.EqualError(t, gotErr, wantErr.Error())
}

// TestMSESearchLargeGroups exercises the MSE kernel on a per-channel 4096-wide F16 matrix
// and checks the chosen grid index and error against the CPU's formulas.
func TestMSESearchLargeGroups(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(3)
	rows, cols := 64, 4096
	w := asDType(testutil.StudentT(r, rows*cols, 3), rows, cols, tensor.F16)
	for _, s := range []quant.Scheme{{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}, {Bits: 8, Granularity: quant.PerChannel}} {
		opt := quant.SearchOptions{Method: quant.SearchMSE}
		wantS, wantZ, err := cpu.SearchParams("w", w, s, opt)
		require.NoError(t, err)
		gotS, gotZ, err := g.SearchParams("w", w, s, opt)
		require.NoError(t, err)
		require.Empty(t, firstF32Diff(gotS, wantS, 1, false), "%s scales", s)
		require.Empty(t, firstI32Diff(gotZ, wantZ), "%s zeros", s)
	}
}
