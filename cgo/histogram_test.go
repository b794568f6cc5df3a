//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// histDiff describes the first difference between two histograms, or "".
func histDiff(got, want *calib.Histogram) string {
	switch {
	case got.HasExp != want.HasExp || (want.HasExp && got.Exp != want.Exp):
		return fmt.Sprintf("exp: got %d (has %v), want %d (has %v)", got.Exp, got.HasExp, want.Exp, want.HasExp)
	case math.Float32bits(got.AbsMax) != math.Float32bits(want.AbsMax):
		return fmt.Sprintf("absmax: got %g (0x%08x), want %g (0x%08x)", got.AbsMax, math.Float32bits(got.AbsMax), want.AbsMax, math.Float32bits(want.AbsMax))
	case got.Count != want.Count || got.NaN != want.NaN || got.Inf != want.Inf:
		return fmt.Sprintf("count/nan/inf: got %d/%d/%d, want %d/%d/%d", got.Count, got.NaN, got.Inf, want.Count, want.NaN, want.Inf)
	}
	n, first := 0, ""
	for i := range got.Counts {
		if got.Counts[i] != want.Counts[i] {
			if n == 0 {
				first = fmt.Sprintf("bin %d: got %d, want %d", i, got.Counts[i], want.Counts[i])
			}
			n++
		}
	}
	if n > 0 {
		return fmt.Sprintf("%d bins differ (exp %d); first %s", n, want.Exp, first)
	}
	if d := firstF32Diff(got.ChannelAbsMax, want.ChannelAbsMax, 1, false); d != "" {
		return "channel absmax: " + d
	}
	return ""
}

// activation returns n values of kind k for dtype dt (finite in dt unless k asks for
// NaN/Inf).
func activation(r *rand.Rand, n, k int, dt tensor.DType) *tensor.Tensor {
	v := make([]float32, n)
	g := testutil.Gaussian(r, n, 1)
	huge, tiny := float32(1e36), float32(1e-36)
	if dt == tensor.F16 {
		huge, tiny = 3e3, 1e-6
	}
	switch k % 8 {
	case 0:
		copy(v, g)
	case 1: // all zeros
	case 2: // huge
		for i := range v {
			v[i] = g[i] * huge
		}
	case 3: // tiny (subnormal halves for F16)
		for i := range v {
			v[i] = g[i] * tiny
		}
	case 4: // float32 subnormals (0 in F16)
		for i := range v {
			v[i] = math.Float32frombits(uint32(r.IntN(1 << 23)))
		}
	case 5: // NaN and ±Inf sprinkled in heavy tails
		copy(v, testutil.StudentT(r, n, 2))
		for i := 0; i < n; i += 13 {
			v[i] = [...]float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[i%3]
		}
	case 6: // exact powers of two and bin edges
		for i := range v {
			v[i] = float32(math.Ldexp(1, r.IntN(40)-20)) * float32(1+r.IntN(3))
		}
	case 7: // only NaN/Inf and zeros
		for i := range v {
			if i%2 == 0 {
				v[i] = float32(math.Inf(1 - 2*(i%4/2)))
			}
		}
	}
	t := tensor.FromF32(v, n)
	if dt != tensor.F32 {
		t = t.Convert(dt)
	}
	return t
}

// TestHistogramMatchesCPU adds batches of many tensors (odd lengths, every dtype,
// adversarial values) in several calls, so later calls coarsen earlier counts, and compares
// every histogram with the CPU backend's after each call.
func TestHistogramMatchesCPU(t *testing.T) {
	g := gpu(t)
	histogramCallsMatchCPU(t, testutil.Rand(10), dtypes, "", func(got []*calib.Histogram, xs []*tensor.Tensor) {
		require.NoError(t, g.HistogramAdd(got, xs))
	})
}

// histogramCallsMatchCPU adds batches of 24 tensors (odd lengths, adversarial values, dtypes
// taken in turn from dts) in three calls with add, so later calls coarsen earlier counts, and
// compares every histogram with the CPU backend's after each call (what: a message prefix).
func histogramCallsMatchCPU(t *testing.T, r *rand.Rand, dts []tensor.DType, what string,
	add func(got []*calib.Histogram, xs []*tensor.Tensor)) {
	lengths := []int{0, 1, 7, 17, 4097, 1 << 16, 3<<20 + 5}
	const tensors = 24
	want := make([]*calib.Histogram, tensors)
	got := make([]*calib.Histogram, tensors)
	for i := range want {
		want[i] = calib.NewHistogram(fmt.Sprintf("t%d", i))
		got[i] = calib.NewHistogram(fmt.Sprintf("t%d", i))
	}
	for call := 0; call < 3; call++ {
		xs := make([]*tensor.Tensor, tensors)
		for i := range xs {
			xs[i] = activation(r, lengths[(i+call)%len(lengths)], i+call*3, dts[(i+call)%len(dts)])
		}
		require.NoError(t, cpu.HistogramAdd(want, xs))
		add(got, xs)
		for i := range want {
			require.Empty(t, histDiff(got[i], want[i]), "%scall %d, tensor %d (%s, %d values, kind %d)", what, call, i, xs[i].DType, xs[i].NumElements(), i+call*3)
		}
	}
}

// TestHistogramChannelAbsMax: histograms that track per-channel absmax get the CPU's
// values (NaN/Inf skipped), and a channel-count mismatch is an error naming the tensor.
func TestHistogramChannelAbsMax(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(11)
	for _, dt := range dtypes {
		for _, shape := range [][]int{{1, 7}, {300, 17}, {2, 64, 4097}} {
			n := tensor.NumElements(shape)
			x := activation(r, n, 5, dt)
			x.Shape = shape
			cols := shape[len(shape)-1]
			want, got := calib.NewHistogram("x"), calib.NewHistogram("x")
			want.ChannelAbsMax, got.ChannelAbsMax = make([]float32, cols), make([]float32, cols)
			want.ChannelAbsMax[0], got.ChannelAbsMax[0] = 1e6, 1e6 // an earlier, larger value stays
			require.NoError(t, cpu.HistogramAdd([]*calib.Histogram{want}, []*tensor.Tensor{x}))
			require.NoError(t, g.HistogramAdd([]*calib.Histogram{got}, []*tensor.Tensor{x}))
			require.Empty(t, histDiff(got, want), "%s %v", dt, shape)
		}
	}
	h := calib.NewHistogram("mismatch")
	h.ChannelAbsMax = make([]float32, 5)
	err := g.HistogramAdd([]*calib.Histogram{h}, []*tensor.Tensor{tensor.FromF32(make([]float32, 12), 3, 4)})
	require.ErrorContains(t, err, `"mismatch"`)
}

// TestHistogramScalarPath launches the kernels directly on unaligned inputs (the scalar
// loads) and on aligned ones (the vector loads) of the same values.
func TestHistogramScalarPath(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(12)
	for _, dt := range dtypes {
		x := activation(r, 100003, 0, dt)
		want := calib.NewHistogram("x")
		require.NoError(t, cpu.HistogramAdd([]*calib.Histogram{want}, []*tensor.Tensor{x}))
		esz := dt.Bits() / 8
		buf, err := Alloc(g.dev, len(x.Data)+64)
		require.NoError(t, err)
		for _, off := range []int{0, esz, 16 + esz} {
			require.NoError(t, buf.CopyFromHost(off, x.Data))
			b, err := NewHistBatch(g.dev, []HistInput{{Buf: buf, Off: off, N: x.NumElements(), DType: dt}})
			require.NoError(t, err)
			require.NoError(t, b.Launch())
			st, counts, err := b.Results()
			require.NoError(t, err)
			require.Empty(t, histDiff(st[0].Histogram("x", &counts[0]), want), "%s at offset %d", dt, off)
			require.NoError(t, b.Close())
		}
		require.NoError(t, buf.Close())
	}
}

// histogramWith bins xs into hs (exact merge) with histogram kernel k, launched directly.
func histogramWith(t *testing.T, g *Backend, k Kernel, hs []*calib.Histogram, xs []*tensor.Tensor) {
	t.Helper()
	total := 0
	for _, x := range xs {
		total += align256(len(x.Data))
	}
	buf, err := Alloc(g.dev, max(total, 256))
	require.NoError(t, err)
	defer buf.Close()
	var ins []HistInput
	var idx []int
	off := 0
	for i, x := range xs {
		if x.NumElements() == 0 {
			continue
		}
		require.NoError(t, buf.CopyFromHost(off, x.Data))
		ins = append(ins, HistInput{Buf: buf, Off: off, N: x.NumElements(), DType: x.DType})
		idx = append(idx, i)
		off += align256(len(x.Data))
	}
	if len(ins) == 0 {
		return
	}
	b, err := NewHistBatch(g.dev, ins)
	require.NoError(t, err)
	defer b.Close()
	if !b.fits(k) {
		t.Skipf("histogram kernel %s cannot run here (device without 128 KB of shared memory per block)", k)
	}
	require.NoError(t, b.LaunchWith(k))
	st, counts, err := b.Results()
	require.NoError(t, err)
	for j, i := range idx {
		require.NoError(t, hs[i].Merge(st[j].Histogram(hs[i].Name, &counts[j])))
	}
}

// Every histogram kernel equals the CPU histograms on F16/BF16 batches (the inputs both
// take; F32 batches can only take two passes and are covered by TestHistogramMatchesCPU):
// odd lengths, adversarial values (zeros only, subnormal halves, NaN/Inf, bin edges),
// repeated calls that coarsen earlier counts.
func TestHistogramKernelsMatchCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(14)
	half := []tensor.DType{tensor.F16, tensor.BF16}
	for _, k := range Kernels(OpHistogram) {
		t.Run(string(k), func(t *testing.T) {
			histogramCallsMatchCPU(t, r, half, fmt.Sprintf("kernel %s, ", k), func(got []*calib.Histogram, xs []*tensor.Tensor) {
				histogramWith(t, g, k, got, xs)
			})
		})
	}
}

// The dispatch takes one pass for F16/BF16 batches where the device allows it and two for a
// batch holding an F32 tensor; a kernel that cannot take the batch is an error, not a
// silent fallback.
func TestHistogramDispatch(t *testing.T) {
	g := gpu(t)
	buf, err := Alloc(g.dev, 4096)
	require.NoError(t, err)
	defer buf.Close()
	f16, err := NewHistBatch(g.dev, []HistInput{{Buf: buf, N: 1000, DType: tensor.F16}})
	require.NoError(t, err)
	defer f16.Close()
	mixed, err := NewHistBatch(g.dev, []HistInput{{Buf: buf, N: 500, DType: tensor.F16}, {Buf: buf, Off: 1024, N: 500, DType: tensor.F32}})
	require.NoError(t, err)
	defer mixed.Close()
	k, err := firstFit(OpHistogram, 0, mixed.fits)
	require.NoError(t, err)
	require.Equal(t, HistogramTwoPass, k)
	require.ErrorContains(t, mixed.LaunchWith(HistogramOnePass), "cannot take this batch")
	k, err = firstFit(OpHistogram, 0, f16.fits)
	require.NoError(t, err)
	if f16.scratchNeed > 0 {
		require.Equal(t, HistogramOnePass, k)
	} else {
		require.Equal(t, HistogramTwoPass, k, "no shared memory for one pass")
	}
	require.ErrorContains(t, f16.LaunchWith("three-pass"), "unknown kernel")
}

// The one-pass kernels launched directly (plain and warp-aggregated): one large tensor (split
// over many blocks), aligned and unaligned (the scalar loads) copies, every kind of values;
// each writes every stats and counts entry itself (the outputs are poisoned before the launch).
func TestHistogramOnePassDirect(t *testing.T) {
	for _, k := range []Kernel{HistogramOnePass, HistogramOnePassWarpAgg} {
		t.Run(string(k), func(t *testing.T) { histogramOnePassDirect(t, k) })
	}
}

func histogramOnePassDirect(t *testing.T, k Kernel) {
	g := gpu(t)
	r := testutil.Rand(15)
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		for _, kind := range []int{0, 1, 3, 5, 6, 7} {
			x := activation(r, 9<<20+3, kind, dt)
			want := calib.NewHistogram("x")
			require.NoError(t, cpu.HistogramAdd([]*calib.Histogram{want}, []*tensor.Tensor{x}))
			buf, err := Alloc(g.dev, len(x.Data)+64)
			require.NoError(t, err)
			for _, off := range []int{0, 2, 18} {
				require.NoError(t, buf.CopyFromHost(off, x.Data))
				b, err := NewHistBatch(g.dev, []HistInput{{Buf: buf, Off: off, N: x.NumElements(), DType: dt}})
				require.NoError(t, err)
				if !b.fits(k) {
					b.Close()
					buf.Close()
					t.Skip("the device lacks the shared memory of the one-pass kernels")
				}
				require.NoError(t, b.stats.Memset(0, b.stats.size, 0xa5))
				require.NoError(t, b.counts.Memset(0, b.counts.size, 0xa5))
				require.NoError(t, b.LaunchWith(k))
				require.NotNil(t, b.scratch, "the one-pass kernel ran")
				st, counts, err := b.Results()
				require.NoError(t, err)
				require.Empty(t, histDiff(st[0].Histogram("x", &counts[0]), want), "%s kind %d at offset %d", dt, kind, off)
				require.NoError(t, b.Close())
			}
			require.NoError(t, buf.Close())
		}
	}
}
