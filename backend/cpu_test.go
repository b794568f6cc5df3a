package backend

import (
	"math"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

func TestOpenCPU(t *testing.T) {
	b, fallback, err := Open("cpu")
	require.NoError(t, err)
	require.Empty(t, fallback)
	require.Equal(t, "cpu", b.Info().Kind)
	require.Positive(t, b.Info().SMs)
	_, _, err = Open("tpu")
	require.ErrorContains(t, err, `unknown device "tpu"`)
	_, _, err = Open("cuda:x")
	require.ErrorContains(t, err, "cuda:N")
}

// A hand-computed case with exact scales: symmetric int8 per channel of
// [[63.75, -127.5], [7.96875, 0.5]]: amax 127.5 and 127.5/16 give scales 1 and 1/16.
func TestCPUQuantizeHandComputed(t *testing.T) {
	b := NewCPU()
	vals := []float32{63.75, -127.5, 7.96875, 0.5}
	w := tensor.FromF32(append([]float32(nil), vals...), 2, 2)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	lo, hi, err := b.GroupRanges("w", w, s)
	require.NoError(t, err)
	require.Equal(t, []float32{-127.5, 0.5}, lo)
	require.Equal(t, []float32{63.75, 7.96875}, hi)
	scales, zeros, err := b.SearchParams("w", w, s, quant.SearchOptions{})
	require.NoError(t, err)
	require.Nil(t, zeros)
	require.Equal(t, []float32{1, 0.0625}, scales)
	q, err := b.Quantize("w", w, s, scales, nil)
	require.NoError(t, err)
	// 63.75 -> 64; -127.5 -> -128 (tie to even); 7.96875/0.0625 = 127.5 -> 128 -> saturates to 127; 0.5/0.0625 = 8.
	require.Equal(t, []byte{64, 0x80, 127, 8}, q.Data)
	d, err := b.Dequantize(q)
	require.NoError(t, err)
	require.Equal(t, []int{2, 2}, d.Shape)
	require.Equal(t, []float32{64, -128, 7.9375, 0.5}, d.F32())
}

func TestCPUWeightErrorsNameTensor(t *testing.T) {
	b := NewCPU()
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	for _, w := range []*tensor.Tensor{
		nil,
		tensor.FromF32(make([]float32, 4), 4),
		tensor.New(tensor.I8, 2, 2),
		{DType: tensor.F32, Shape: []int{2, 2}, Data: make([]byte, 3)},
	} {
		_, _, err := b.GroupRanges("layers.0.wq", w, s)
		require.ErrorContains(t, err, `"layers.0.wq"`)
	}
	nan := tensor.FromF32([]float32{1, float32(math.NaN())}, 1, 2)
	_, _, err := b.SearchParams("x", nan, s, quant.SearchOptions{Method: quant.SearchMSE})
	require.ErrorContains(t, err, "non-finite")
	_, err = b.Dequantize(&quant.QTensor{Name: "bad", Scheme: s, Rows: 1, Cols: 2})
	require.Error(t, err)
}

// HistogramAdd dispatches on dtype to calib's exact Add methods and folds the per-channel
// absmax only for histograms that track it.
func TestCPUHistogramAdd(t *testing.T) {
	b := NewCPU()
	r := testutil.Rand(5)
	v := testutil.Gaussian(r, 3*40, 2)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		x := tensor.FromF32(append([]float32(nil), v...), 3, 40)
		if dt != tensor.F32 {
			x = x.Convert(dt)
		}
		want := calib.NewHistogram("a")
		require.NoError(t, calib.AddTensor(want, x))
		want.AddChannelAbsMax(x.ToF32(), 40)
		got := calib.NewHistogram("a")
		got.ChannelAbsMax = make([]float32, 40)
		plain := calib.NewHistogram("b")
		require.NoError(t, b.HistogramAdd([]*calib.Histogram{got, plain}, []*tensor.Tensor{x, x}))
		require.Equal(t, want, got, dt.String())
		require.Nil(t, plain.ChannelAbsMax)
		require.Equal(t, want.Counts, plain.Counts)
		for c := 0; c < 40; c++ {
			m := float32(0)
			for row := 0; row < 3; row++ {
				m = max(m, float32(math.Abs(float64(x.ToF32()[row*40+c]))))
			}
			require.Equal(t, m, got.ChannelAbsMax[c])
		}
	}
	h := calib.NewHistogram("act")
	h.ChannelAbsMax = make([]float32, 3)
	err := b.HistogramAdd([]*calib.Histogram{h}, []*tensor.Tensor{tensor.FromF32(make([]float32, 8), 2, 4)})
	require.ErrorContains(t, err, `"act"`)
	require.Error(t, b.HistogramAdd([]*calib.Histogram{h}, nil))
	require.ErrorContains(t, b.HistogramAdd([]*calib.Histogram{h}, []*tensor.Tensor{tensor.New(tensor.I32, 4)}), "I32")
}

func TestCPUThresholds(t *testing.T) {
	b := NewCPU()
	h := calib.NewHistogram("h")
	h.AddF32(testutil.Laplace(testutil.Rand(6), 10000, 1))
	for _, m := range []calib.Method{calib.MethodMax, calib.MethodPercentile, calib.MethodMSE, calib.MethodEntropy} {
		opt := calib.DefaultOptions(m)
		got, err := b.Thresholds([]*calib.Histogram{h}, opt)
		require.NoError(t, err)
		want, err := calib.Compute(h, opt)
		require.NoError(t, err)
		require.Equal(t, []calib.Result{want}, got)
		require.Positive(t, got[0].Amax)
		require.LessOrEqual(t, got[0].Amax, h.AbsMax*1.001+float32(math.Ldexp(1, h.Exp)))
	}
	_, err := b.Thresholds([]*calib.Histogram{h}, calib.Options{Method: calib.MethodPercentile, Percentile: 150})
	require.ErrorContains(t, err, `"h"`)
	_, err = b.Thresholds([]*calib.Histogram{nil}, calib.DefaultOptions(calib.MethodMax))
	require.Error(t, err)
}

// Every kernel case runs on the CPU timer with small inputs, once and three times back to
// back.
func TestCPUPrepareKernel(t *testing.T) {
	c := CPU{}
	r := testutil.Rand(7)
	w := tensor.FromF32(testutil.Gaussian(r, 8*64, 1), 8, 64).Convert(tensor.F16)
	h := calib.NewHistogram("h")
	h.AddF32(testutil.Gaussian(r, 1000, 1))
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	for _, k := range []KernelCase{
		{Op: KernelScales, W: w, Scheme: s},
		{Op: KernelQuantize, W: w, Scheme: s},
		{Op: KernelMSESearch, W: w, Scheme: s},
		{Op: KernelHistogram, Xs: []*tensor.Tensor{w, w}},
		{Op: KernelThresholds, Hists: []*calib.Histogram{h}, Method: calib.MethodEntropy},
		{Op: KernelCopy, Bytes: 1 << 10},
	} {
		run, cleanup, err := c.PrepareKernel(k)
		require.NoError(t, err, k.Op)
		for _, reps := range []int{1, 3} {
			ms, err := run(reps)
			require.NoError(t, err, k.Op)
			require.GreaterOrEqual(t, ms, 0.0)
		}
		cleanup()
	}
	_, _, err := c.PrepareKernel(KernelCase{Op: "nope"})
	require.Error(t, err)
}

// The CPU backend reads F16/BF16 weights a row at a time: the results are those of the
// same weight converted to F32 first.
func TestCPUHalfWeightsMatchConverted(t *testing.T) {
	b := NewCPU()
	w := tensor.FromF32(testutil.Gaussian(testutil.Rand(6), 24*64, 0.02), 24, 64)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		half := w.Convert(dt)
		f32 := tensor.FromF32(half.ToF32(), 24, 64)
		for _, opt := range []quant.SearchOptions{{}, {Method: quant.SearchMSE}} {
			scales, zeros, err := b.SearchParams("w", half, s, opt)
			require.NoError(t, err)
			wantScales, wantZeros, err := b.SearchParams("w", f32, s, opt)
			require.NoError(t, err)
			require.Equal(t, wantScales, scales)
			require.Equal(t, wantZeros, zeros)
			q, err := b.Quantize("w", half, s, scales, zeros)
			require.NoError(t, err)
			want, err := b.Quantize("w", f32, s, scales, zeros)
			require.NoError(t, err)
			require.Equal(t, want, q)
		}
		lo, hi, err := b.GroupRanges("w", half, s)
		require.NoError(t, err)
		wlo, whi, err := b.GroupRanges("w", f32, s)
		require.NoError(t, err)
		require.Equal(t, wlo, lo)
		require.Equal(t, whi, hi)
	}
}
