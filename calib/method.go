package calib

import (
	"fmt"
	"math"
	"math/big"
	"runtime"
)

// DefaultPercentile is the percentile used when Options.Percentile is zero.
const DefaultPercentile = 99.99

var methodNames = map[Method]string{MethodMax: "max", MethodPercentile: "percentile", MethodMSE: "mse", MethodEntropy: "entropy"}

// String returns the CLI spelling: max, percentile, mse or entropy.
func (m Method) String() string {
	if s, ok := methodNames[m]; ok {
		return s
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod accepts max, percentile, mse and entropy.
func ParseMethod(s string) (Method, error) {
	for m, n := range methodNames {
		if n == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown calibration method %q (want entropy, percentile, mse or max)", s)
}

// DefaultOptions returns the settings autoq uses unless told otherwise: int8 signed
// (127 levels), percentile 99.99, zero spike suppression on (as Model Optimizer).
func DefaultOptions(m Method) Options {
	return Options{Method: m, Percentile: DefaultPercentile, Levels: 127, ZeroSpike: true}
}

// Normalized fills in defaults (Levels 127, DefaultPercentile) and checks the options: the
// settings Compute runs with (the CUDA backend sends options it rejects to the CPU, so the
// error is this one).
func (o Options) Normalized() (Options, error) {
	if o.Levels == 0 {
		o.Levels = 127
	}
	if o.Levels < 1 || o.Levels > 32767 {
		return o, fmt.Errorf("calib: levels must be in 1..32767, got %d", o.Levels)
	}
	if o.Method == MethodPercentile {
		if o.Percentile == 0 {
			o.Percentile = DefaultPercentile
		}
		if !(o.Percentile > 0 && o.Percentile <= 100) {
			return o, fmt.Errorf("calib: percentile must be in (0, 100], got %v", o.Percentile)
		}
	}
	if o.Method == MethodEntropy && o.Levels > MaxEntropyLevels {
		return o, fmt.Errorf("calib: entropy supports up to %d levels (8-bit), got %d", MaxEntropyLevels, o.Levels)
	}
	if _, ok := methodNames[o.Method]; !ok {
		return o, fmt.Errorf("calib: unknown method %d", o.Method)
	}
	return o, nil
}

// Compute runs the calibrator opt.Method on h. An empty histogram (no non-zero finite
// value) gives Result{Empty: true} and no error.
func Compute(h *Histogram, opt Options) (Result, error) {
	opt, err := opt.Normalized()
	if err != nil {
		return Result{}, err
	}
	return computeWorkers(h, opt, runtime.GOMAXPROCS(0)), nil
}

// isEmpty reports whether h has nothing to calibrate on.
func isEmpty(h *Histogram) bool { return !h.HasExp || h.AbsMax == 0 }

// BinEdge returns i * 2^exp as float32 (exact unless it overflows float32, which cannot
// happen for i <= 2048 and exp = ExpFor of a finite float32: 2048*2^117 = 2^128 is the
// only overflow and needs i = 2048 with absmax >= 2^127; it saturates to MaxFloat32).
func BinEdge(i, exp int) float32 {
	v := math.Ldexp(float64(i), exp)
	if v > math.MaxFloat32 {
		return math.MaxFloat32
	}
	return float32(v)
}

// Max is the max calibrator: amax = AbsMax (Bin 0).
func Max(h *Histogram) Result {
	if isEmpty(h) {
		return Result{Empty: true}
	}
	return Result{Amax: h.AbsMax}
}

// Percentile is the percentile calibrator: amax is the smallest bin edge i * 2^Exp
// (i in 1..2048) such that the bins [0, i) hold at least p% of Count. The comparison
// cum*100 >= p*Count is done exactly (p is a float64, i.e. a dyadic rational) by turning
// it into the integer threshold need = ceil(p*Count/100) with math/big; p outside (0,100]
// is clamped.
func Percentile(h *Histogram, p float64) Result {
	if isEmpty(h) {
		return Result{Empty: true}
	}
	needU := PercentileTarget(p, h.Count)
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if cum >= needU {
			return Result{Amax: BinEdge(i+1, h.Exp), Bin: i + 1}
		}
	}
	return Result{Amax: BinEdge(NumBins, h.Exp), Bin: NumBins}
}

// PercentileTarget is the count the percentile calibrator's bins must reach: ceil(p*count/100)
// computed exactly with math/big (p, a float64, is a dyadic rational), p clamped to [0, 100].
// It is at most count. The CUDA threshold kernel receives it precomputed.
func PercentileTarget(p float64, count uint64) uint64 {
	p = min(max(p, 0), 100)
	num := new(big.Rat).SetFloat64(p)
	num.Mul(num, new(big.Rat).SetInt(new(big.Int).SetUint64(count)))
	num.Quo(num, big.NewRat(100, 1))
	need := new(big.Int).Quo(num.Num(), num.Denom()) // floor, num >= 0
	if new(big.Int).Mul(need, num.Denom()).Cmp(num.Num()) != 0 {
		need.Add(need, big.NewInt(1))
	}
	return need.Uint64() // need <= count, so it fits
}

// ComputeAll runs Compute on every histogram, spreading the tensors over all cores (each
// tensor's search single-threaded, so results equal Compute's exactly).
func ComputeAll(hs []*Histogram, opt Options) ([]Result, error) {
	opt, err := opt.Normalized()
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(hs))
	parallel(len(hs), runtime.GOMAXPROCS(0), func(a, b int) {
		for i := a; i < b; i++ {
			out[i] = computeWorkers(hs[i], opt, 1)
		}
	})
	return out, nil
}

func computeWorkers(h *Histogram, opt Options, workers int) Result {
	switch opt.Method {
	case MethodMax:
		return Max(h)
	case MethodPercentile:
		return Percentile(h, opt.Percentile)
	case MethodMSE:
		return mseWorkers(h, opt, workers)
	default:
		return entropyWorkers(h, opt, workers)
	}
}
