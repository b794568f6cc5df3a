package calib

import (
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

func TestKLLogMatchesMathLog(t *testing.T) {
	r := testutil.Rand(7)
	xs := []float64{1, 2, 0.5, math.E, 10, 1e-300, 5e-324, math.MaxFloat64, math.Sqrt2, math.Sqrt2 / 2, 1 + 1e-15, 1 - 1e-16}
	for range 200000 {
		xs = append(xs, math.Float64frombits(r.Uint64()&0x7fefffffffffffff|1))
	}
	for n := 1; n <= 5000; n++ {
		xs = append(xs, float64(n))
	}
	for _, x := range xs {
		want := math.Log(x)
		if x < 0x1p-1022 {
			// Go's amd64 math.Log mishandles subnormals (math.Log(5e-324) = -709.09, the
			// true value is -744.44), so scale into the normal range first.
			want = math.Log(x*0x1p100) - 100*math.Ln2
		}
		got := KLLog(x)
		if want == 0 {
			require.Equal(t, 0.0, got)
			continue
		}
		require.InEpsilon(t, want, got, 1e-15, "x=%g", x)
	}
	require.True(t, math.IsInf(KLLog(0), -1))
	require.True(t, math.IsNaN(KLLog(-1)))
	require.True(t, math.IsInf(KLLog(math.Inf(1)), 1))
}

// slowEntropy is a literal transcription of the definition in Entropy's comment (one P, one
// Q per candidate, math.Log), independent of the prefix-sum evaluation.
func slowEntropy(counts [NumBins]uint64, zeroSpike bool, groups int) (int, []float64) {
	bins := make([]float64, NumBins)
	for i, c := range counts {
		bins[i] = float64(c)
	}
	if zeroSpike {
		bins[0] = bins[1]
	}
	top := 0
	for j, c := range counts {
		if c != 0 {
			top = j
		}
	}
	best, bestKL := -1, 0.0
	var all []float64
	for i := 128; i <= max(128, min(NumBins, top+1)); i++ {
		p := append([]float64(nil), bins[:i]...)
		for j := i; j < NumBins; j++ {
			p[i-1] += bins[j]
		}
		mass := make([]float64, groups)
		nz := make([]float64, groups)
		for j := 0; j < i; j++ {
			if bins[j] != 0 {
				mass[j*groups/i] += bins[j]
				nz[j*groups/i]++
			}
		}
		q := make([]float64, i)
		for j := 0; j < i; j++ {
			if bins[j] != 0 {
				q[j] = mass[j*groups/i] / nz[j*groups/i]
			}
		}
		var sp, sq float64
		for j := range p {
			sp += p[j]
			sq += q[j]
		}
		kl := 0.0
		for j := range p {
			if p[j] == 0 {
				continue
			}
			if q[j] == 0 {
				kl = math.Inf(1)
				break
			}
			pn, qn := p[j]/sp, q[j]/sq
			kl += pn * math.Log(pn/qn)
		}
		all = append(all, kl)
		if best < 0 || kl <= bestKL {
			best, bestKL = i, kl
		}
	}
	return best, all
}

func histOf(name string, v []float32) *Histogram {
	h := NewHistogram(name)
	h.AddF32(v)
	return h
}

func TestEntropyMatchesSlowDefinition(t *testing.T) {
	r := testutil.Rand(8)
	hs := []*Histogram{
		histOf("gauss", testutil.Gaussian(r, 200000, 1)),
		histOf("laplace", testutil.Laplace(r, 200000, 1)),
		histOf("studentT3", testutil.StudentT(r, 200000, 3)),
		histOf("studentT1", testutil.StudentT(r, 50000, 1)),
		histOf("small", testutil.Gaussian(r, 300, 1)),
	}
	relu := testutil.Gaussian(r, 100000, 2)
	for i := range relu {
		relu[i] = max(relu[i], 0)
	}
	hs = append(hs, histOf("relu", relu))
	for _, h := range hs {
		for _, zs := range []bool{true, false} {
			for _, levels := range []int{127, 255} {
				got := entropyWorkers(h, Options{ZeroSpike: zs, Levels: levels}, 1)
				wantBin, kls := slowEntropy(h.Counts, zs, levels+1)
				require.Equal(t, wantBin, got.Bin, "%s zeroSpike=%v levels=%d", h.Name, zs, levels)
				require.InEpsilon(t, kls[wantBin-128], got.KL, 1e-9, h.Name)
				require.Equal(t, float32(math.Ldexp(float64(got.Bin), h.Exp)), got.Amax)
				// Every candidate's KL agrees, not just the minimum.
				fast := entropyKL(h, zs, EntropyPlanFor(levels+1), 2, len(kls))
				for c, want := range kls {
					if math.IsInf(want, 1) {
						require.True(t, math.IsInf(fast[c], 1), "%s candidate %d", h.Name, c+128)
						continue
					}
					require.InDelta(t, want, fast[c], 1e-9*max(want, 1e-3), "%s candidate %d", h.Name, c+128)
				}
			}
		}
	}
}

func TestEntropyWorkerCountIrrelevant(t *testing.T) {
	h := histOf("x", testutil.StudentT(testutil.Rand(9), 100000, 4))
	want := entropyWorkers(h, DefaultOptions(MethodEntropy), 1)
	for _, w := range []int{2, 3, 7, 64} {
		require.Equal(t, want, entropyWorkers(h, DefaultOptions(MethodEntropy), w))
		require.Equal(t, mseWorkers(h, DefaultOptions(MethodMSE), 1), mseWorkers(h, DefaultOptions(MethodMSE), w))
	}
}

// Uniform counts over all 2048 bins: the candidate 2048 reproduces P exactly (KL 0), every
// smaller one folds mass into its last bin, so entropy must choose 2048.
func TestEntropyUniform(t *testing.T) {
	h := &Histogram{Name: "u", HasExp: true, Exp: -3, AbsMax: 255.9}
	for i := range h.Counts {
		h.Counts[i] = 1000
	}
	h.Count = 1000 * NumBins
	res := Entropy(h, DefaultOptions(MethodEntropy))
	require.Equal(t, NumBins, res.Bin)
	require.Equal(t, float32(256), res.Amax) // 2048 * 2^-3
	require.InDelta(t, 0, res.KL, 1e-12)
}

// All mass below bin 128 with distinct counts: candidate 128 has one bin per group, Q == P,
// KL 0; every larger candidate merges two unequal bins somewhere, so 128 wins.
func TestEntropyNarrowData(t *testing.T) {
	h := &Histogram{Name: "n", HasExp: true, Exp: 0, AbsMax: 127.5}
	for i := range 128 {
		h.Counts[i] = uint64(1000 + 7*i)
		h.Count += h.Counts[i]
	}
	res := Entropy(h, Options{})
	require.Equal(t, 128, res.Bin)
	require.Equal(t, float32(128), res.Amax)
	require.InDelta(t, 0, res.KL, 1e-12)
}

// A far outlier: entropy and percentile clip it, max keeps it.
func TestOutlierClippedByEntropyNotMax(t *testing.T) {
	// N(0,1) plus one value at 60: Exp = floor(log2 60) - 10 = -5, bins of 1/32, the
	// Gaussian bulk (|x| < 5) in bins < 160, the outlier in bin 1920.
	v := testutil.Gaussian(testutil.Rand(10), 1000000, 1)
	v[12345] = 60
	h := histOf("o", v)
	require.Equal(t, -5, h.Exp)
	require.Equal(t, float32(60), Max(h).Amax)
	e := Entropy(h, DefaultOptions(MethodEntropy))
	require.Less(t, e.Amax, float32(10), "entropy clip %v", e.Amax)
	require.GreaterOrEqual(t, e.Amax, float32(4)) // candidates start at bin 128 = 4.0
	p := Percentile(h, 99.99)
	require.Less(t, p.Amax, float32(10))
	m := MSE(h, DefaultOptions(MethodMSE))
	require.Less(t, m.Amax, float32(60))
}

// Values 1..10000, bin width 8 (Exp = floor(log2 10000) - 10 = 3): bins [0, i) hold the
// values below 8i, i.e. min(8i-1, 10000) of them.
func TestPercentileKnownData(t *testing.T) {
	v := make([]float32, 10000)
	for i := range v {
		v[i] = float32(i + 1)
	}
	h := histOf("p", v)
	require.Equal(t, 3, h.Exp)
	// p=50: need 5000 -> smallest i with 8i-1 >= 5000 is 626 -> amax 5008.
	require.Equal(t, Result{Amax: 5008, Bin: 626}, Percentile(h, 50))
	// p=99.99 (float64 just below 99.99): need ceil(9998.99...) = 9999 -> i = 1250.
	require.Equal(t, Result{Amax: 10000, Bin: 1250}, Percentile(h, 99.99))
	// p=100: need 10000 -> 8i-1 >= 10000 -> i = 1251.
	require.Equal(t, Result{Amax: 10008, Bin: 1251}, Percentile(h, 100))
	r, err := Compute(h, Options{Method: MethodPercentile}) // default 99.99
	require.NoError(t, err)
	require.Equal(t, 1250, r.Bin)
	_, err = Compute(h, Options{Method: MethodPercentile, Percentile: 101})
	require.Error(t, err)
}

// Uniform data on [0, 1024) bins: clipping at a costs ~(1024-a)^3/3 and rounding
// ~1024*(a/127)^2/12; the optimum is near a = 1020.7.
func TestMSEUniform(t *testing.T) {
	h := &Histogram{Name: "m", HasExp: true, Exp: 0, AbsMax: 1023.5}
	for i := range 1024 {
		h.Counts[i] = 100
	}
	h.Count = 102400
	res := MSE(h, Options{})
	require.GreaterOrEqual(t, res.Bin, 1015)
	require.LessOrEqual(t, res.Bin, 1024)
	require.Greater(t, res.KL, 0.0)
}

// Scaling the data by 2^k scales every amax by exactly 2^k and keeps the bin and the KL.
func TestPowerOfTwoScaling(t *testing.T) {
	v := testutil.Laplace(testutil.Rand(11), 100000, 1)
	base := histOf("s", v)
	for _, k := range []int{-20, -5, 3, 40} {
		w := make([]float32, len(v))
		for i, x := range v {
			w[i] = float32(math.Ldexp(float64(x), k))
		}
		h := histOf("s", w)
		require.Equal(t, base.Counts, h.Counts)
		require.Equal(t, base.Exp+k, h.Exp)
		for _, m := range []Method{MethodMax, MethodPercentile, MethodMSE, MethodEntropy} {
			a, err := Compute(base, DefaultOptions(m))
			require.NoError(t, err)
			b, err := Compute(h, DefaultOptions(m))
			require.NoError(t, err)
			require.Equal(t, a.Bin, b.Bin, m.String())
			require.Equal(t, float32(math.Ldexp(float64(a.Amax), k)), b.Amax, m.String())
			if m == MethodEntropy {
				require.Equal(t, a.KL, b.KL)
			}
		}
	}
}

func TestEmptyAndParse(t *testing.T) {
	for _, m := range []Method{MethodMax, MethodPercentile, MethodMSE, MethodEntropy} {
		r, err := Compute(NewHistogram("e"), DefaultOptions(m))
		require.NoError(t, err)
		require.Equal(t, Result{Empty: true}, r)
		p, err := ParseMethod(m.String())
		require.NoError(t, err)
		require.Equal(t, m, p)
	}
	_, err := ParseMethod("kl")
	require.ErrorContains(t, err, "unknown calibration method")
	_, err = Compute(NewHistogram("e"), Options{Method: 99})
	require.Error(t, err)
}

func TestEntropyLevels(t *testing.T) {
	h := histOf("l", testutil.Laplace(testutil.Rand(13), 50000, 1))
	for _, levels := range []int{1, 7, 15, 63} { // int4 and smaller: other group counts
		got := Entropy(h, Options{Levels: levels, ZeroSpike: true})
		want, _ := slowEntropy(h.Counts, true, levels+1)
		require.Equal(t, want, got.Bin, "levels %d", levels)
	}
	_, err := Compute(h, Options{Method: MethodEntropy, Levels: 1000})
	require.ErrorContains(t, err, "up to 255 levels")
}
