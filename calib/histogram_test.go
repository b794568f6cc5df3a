package calib

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// refBin is floor(|v| / 2^exp) in float64, where the division by a power of two is exact.
func refBin(v float32, exp int) int {
	return int(math.Floor(math.Ldexp(math.Abs(float64(v)), -exp)))
}

func TestExpForMatchesFrexp(t *testing.T) {
	r := testutil.Rand(1)
	cases := []float32{1, 2, 3, 1023, 1024, 1025, 0.75, math.MaxFloat32, math.SmallestNonzeroFloat32, 1e-40, -5}
	for range 10000 {
		cases = append(cases, math.Float32frombits(r.Uint32()&0x7f7fffff|1))
	}
	for _, v := range cases {
		_, e := math.Frexp(math.Abs(float64(v))) // |v| = m*2^e, m in [0.5,1): floor(log2) = e-1
		require.Equal(t, e-1-10, ExpFor(v), "v=%g", v)
		require.Less(t, refBin(v, ExpFor(v)), NumBins)
		require.GreaterOrEqual(t, refBin(v, ExpFor(v)), 1024)
	}
	require.Equal(t, -149-10, ExpFor(math.SmallestNonzeroFloat32))
	require.Equal(t, 127-10, ExpFor(math.MaxFloat32))
}

func TestBinIndexExact(t *testing.T) {
	r := testutil.Rand(2)
	for range 200000 {
		v := math.Float32frombits(r.Uint32() & 0xff7fffff) // finite
		lo := ExpFor(v)
		if v == 0 {
			continue
		}
		for _, exp := range []int{lo, lo + 1, lo + 5, lo + 11, lo + 30, lo + 200} {
			require.Equal(t, refBin(v, exp), BinIndex(v, exp), "v=%g exp=%d", v, exp)
		}
	}
	require.Equal(t, 0, BinIndex(0, -20))
	require.Equal(t, 1024, BinIndex(1, -10))
	require.Equal(t, 2047, BinIndex(-2047.9, 0))
}

// Every finite half value goes to the bin of its float32 value, in every path.
func TestF16AndBF16BinsMatchF32(t *testing.T) {
	var all []uint16
	for b := 0; b < 1<<16; b++ {
		if b&0x7fff < 0x7c00 {
			all = append(all, uint16(b))
		}
	}
	for _, exp := range []int{-34, -25, -24, -10, 0, 5, 40} {
		for _, b := range all {
			v := tensor.F16ToF32(b)
			if exp < ExpFor(v) && v != 0 {
				continue
			}
			require.Equal(t, refBin(v, exp), binIndexF16(b, exp), "half %#04x exp %d", b, exp)
		}
	}
	h16, h32 := NewHistogram("x"), NewHistogram("x")
	h16.AddF16(all)
	h32.AddF32(tensor.F16ToF32Slice(nil, all))
	require.Equal(t, h32, h16)

	r := testutil.Rand(3)
	bf := make([]uint16, 100000)
	for i := range bf {
		bf[i] = uint16(r.Uint32())
	}
	hb, hf := NewHistogram("x"), NewHistogram("x")
	hb.AddBF16(bf)
	hf.AddF32(tensor.BF16ToF32Slice(nil, bf))
	require.Equal(t, hf, hb)
	require.NotZero(t, hb.NaN)
	require.NotZero(t, hb.Inf)
}

func TestNonFiniteCountedNotBinned(t *testing.T) {
	h := NewHistogram("t")
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	h.AddF32([]float32{1, nan, inf, -inf, 0, -3})
	require.EqualValues(t, 1, h.NaN)
	require.EqualValues(t, 2, h.Inf)
	require.EqualValues(t, 3, h.Count)
	require.Equal(t, float32(3), h.AbsMax)
	require.Equal(t, 1-10, h.Exp) // floor(log2 3) - 10
	require.EqualValues(t, 1, h.Counts[0])
	require.EqualValues(t, 1, h.Counts[512])  // 1 / 2^-9
	require.EqualValues(t, 1, h.Counts[1536]) // 3 / 2^-9

	z := NewHistogram("z")
	z.AddF32([]float32{0, float32(math.Copysign(0, -1)), nan})
	require.False(t, z.HasExp)
	require.EqualValues(t, 2, z.Counts[0])
	require.True(t, Max(z).Empty)
}

func TestCoarsenEqualsDirectBinning(t *testing.T) {
	v := testutil.Laplace(testutil.Rand(4), 50000, 1)
	h := NewHistogram("a")
	h.AddF32(v)
	for _, d := range []int{1, 3, 11, 12, 40} {
		c := h.Clone()
		c.Coarsen(h.Exp + d)
		var want [NumBins]uint64
		for _, x := range v {
			want[refBin(x, h.Exp+d)]++
		}
		require.Equal(t, want, c.Counts, "d=%d", d)
	}
}

func TestChannelAbsMax(t *testing.T) {
	h := NewHistogram("c")
	h.AddChannelAbsMax([]float32{1, -2, 3, -4, 0.5, float32(math.NaN())}, 3)
	require.Equal(t, []float32{4, 2, 3}, h.ChannelAbsMax)
	o := NewHistogram("c")
	o.AddChannelAbsMax([]float32{-9, 0, 0}, 3)
	require.NoError(t, h.Merge(o))
	require.Equal(t, []float32{9, 2, 3}, h.ChannelAbsMax)
	require.Panics(t, func() { h.AddChannelAbsMax([]float32{1, 2}, 3) })
	bad := NewHistogram("c")
	bad.AddChannelAbsMax([]float32{1, 2}, 2)
	require.Error(t, h.Merge(bad))
	require.Error(t, h.Merge(NewHistogram("other")))
}

// datasets used by the order-independence tests.
func datasets() map[string][]float32 {
	r := testutil.Rand(5)
	out := map[string][]float32{
		"gaussian": testutil.Gaussian(r, 40000, 1),
		"laplace":  testutil.Laplace(r, 40000, 0.1),
		"studentT": testutil.StudentT(r, 40000, 2),
	}
	z := testutil.Gaussian(r, 30000, 3)
	for i := range z {
		if i%3 == 0 {
			z[i] = 0
		}
	}
	out["zeros"] = z
	sub := make([]float32, 20000)
	for i := range sub {
		sub[i] = math.Float32frombits(r.Uint32()&0x807fffff) * float32(1+i%2) // subnormals (and 2x)
	}
	out["subnormal"] = sub
	nf := testutil.Gaussian(r, 20000, 1e30)
	for i := 0; i < len(nf); i += 97 {
		nf[i] = float32(math.NaN())
		nf[i+1] = float32(math.Inf(-1 + 2*(i%2)))
	}
	out["nonfinite"] = nf
	wide := testutil.Gaussian(r, 20000, 1)
	for i := range wide {
		wide[i] *= float32(math.Ldexp(1, int(r.IntN(60))-30))
	}
	out["wide"] = wide
	return out
}

// Any shuffle, split and merge order gives the same histogram, bit for bit.
func TestOrderIndependence(t *testing.T) {
	for name, data := range datasets() {
		t.Run(name, func(t *testing.T) {
			ref := NewHistogram(name)
			ref.AddF32(data)
			r := testutil.Rand(6)
			for trial := range 25 {
				v := append([]float32(nil), data...)
				r.Shuffle(len(v), func(i, j int) { v[i], v[j] = v[j], v[i] })
				parts := randomSplit(r, v, 1+trial%9)
				// Some parts streamed into one histogram, others into their own, merged in a
				// random order.
				var hs []*Histogram
				for _, p := range parts {
					if len(hs) > 0 && r.IntN(2) == 0 {
						hs[len(hs)-1].AddF32(p)
						continue
					}
					h := NewHistogram(name)
					h.AddF32(p)
					hs = append(hs, h)
				}
				for len(hs) > 1 {
					i, j := r.IntN(len(hs)), r.IntN(len(hs)-1)
					if j >= i {
						j++
					}
					require.NoError(t, hs[i].Merge(hs[j]))
					hs = append(hs[:j], hs[j+1:]...)
				}
				require.Equal(t, ref, hs[0], "trial %d", trial)
			}
		})
	}
}

func randomSplit(r *rand.Rand, v []float32, n int) [][]float32 {
	var out [][]float32
	for n > 1 && len(v) > 0 {
		k := r.IntN(len(v) + 1)
		out = append(out, v[:k])
		v = v[k:]
		n--
	}
	return append(out, v)
}

// The float32 multiply hot path equals the integer-shift rule (and the float64 reference).
func TestBinPathsAgree(t *testing.T) {
	r := testutil.Rand(12)
	for range 300000 {
		u := r.Uint32() & 0x7f7fffff
		v := math.Float32frombits(u)
		if v == 0 {
			continue
		}
		for _, exp := range []int{ExpFor(v), ExpFor(v) + 1 + r.IntN(30)} {
			if exp < -126 || exp > 117 {
				continue
			}
			mul := float32(math.Ldexp(1, -exp))
			require.Equal(t, uint32(BinIndex(v, exp)), binMul(u|r.Uint32()&0x80000000, mul), "v=%g exp=%d", v, exp)
		}
	}
	// Small F16 batches take the direct path, large ones the table: same histogram.
	v := tensor.F32ToF16Slice(testutil.Gaussian(r, 40000, 0.01))
	big, small := NewHistogram("x"), NewHistogram("x")
	big.AddF16(v)
	for i := 0; i < len(v); i += 1000 {
		small.AddF16(v[i : i+1000])
	}
	require.Equal(t, big, small)
}

// The same values arriving as F16, BF16 or F32 batches, split and merged any way, give one
// histogram.
func TestOrderIndependenceMixedDTypes(t *testing.T) {
	r := testutil.Rand(14)
	src := testutil.StudentT(r, 60000, 3)
	for i := 0; i < len(src); i += 501 {
		src[i] = 0
	}
	half := tensor.F32ToF16Slice(src)
	vals := tensor.F16ToF32Slice(nil, half) // the same values as float32
	ref := histOf("m", vals)
	for trial := range 10 {
		idx := r.Perm(len(half))
		var hs []*Histogram
		for start := 0; start < len(idx); {
			n := 1 + r.IntN(20000)
			end := min(start+n, len(idx))
			h := NewHistogram("m")
			var hv []uint16
			var fv []float32
			for _, k := range idx[start:end] {
				hv = append(hv, half[k])
				fv = append(fv, vals[k])
			}
			if (trial+start)%2 == 0 {
				h.AddF16(hv)
			} else {
				h.AddF32(fv)
			}
			hs = append(hs, h)
			start = end
		}
		for len(hs) > 1 {
			k := r.IntN(len(hs) - 1)
			require.NoError(t, hs[k+1].Merge(hs[k]))
			hs = append(hs[:k], hs[k+1:]...)
		}
		require.Equal(t, ref, hs[0], "trial %d", trial)
	}
}
