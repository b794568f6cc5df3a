package quant

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/tensor"
)

// The searches of QuantizeTensor, a row at a time.

// SearchParamsTensor is SearchParams(name, t.ToF32(), rows, cols, s, opt), bit for bit,
// converting a row at a time where the search allows it (see QuantizeTensor).
func SearchParamsTensor(name string, t *tensor.Tensor, s Scheme, opt SearchOptions) (scales []float32, zeros []int32, err error) {
	m, err := matrixOf(name, t)
	if err != nil {
		return nil, nil, err
	}
	return searchMatrix(name, m, s, opt)
}

func searchMatrix(name string, m matrix, s Scheme, opt SearchOptions) (scales []float32, zeros []int32, err error) {
	method := opt.method()
	if !rowLocal(s, method) {
		if method != SearchMax {
			return SearchParams(name, m.all(), m.rows, m.cols, s, opt)
		}
		lo, hi, err := groupRangesMatrix(name, m, s)
		if err != nil {
			return nil, nil, err
		}
		scales, zeros = Params(s, lo, hi)
		return scales, zeros, nil
	}
	l, err := checkLayout(name, m.rows*m.cols, m.rows, m.cols, s)
	if err != nil {
		return nil, nil, err
	}
	p, err := checkPercentile(name, s, opt, method)
	if err != nil {
		return nil, nil, err
	}
	scales = make([]float32, l.NParams())
	if !s.Symmetric {
		zeros = make([]int32, l.NParams())
	}
	err = m.forRowChunks(name, func(mb matrix, r0, r1 int, conv, _ []float32) error {
		var scratch rowScratch
		for r := r0; r < r1; r++ {
			sc, zs := l.paramSlices(scales, zeros, r)
			if err := rowParams(name, mb.row(r, conv), r, l, s, method, p, sc, zs, &scratch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return scales, zeros, nil
}

// GroupRangesTensor is GroupRanges(name, t.ToF32(), rows, cols, s), a row at a time.
func GroupRangesTensor(name string, t *tensor.Tensor, s Scheme) (lo, hi []float32, err error) {
	m, err := matrixOf(name, t)
	if err != nil {
		return nil, nil, err
	}
	return groupRangesMatrix(name, m, s)
}

// groupRangesMatrix is GroupRanges a row at a time.
func groupRangesMatrix(name string, m matrix, s Scheme) (lo, hi []float32, err error) {
	l, err := checkLayout(name, m.rows*m.cols, m.rows, m.cols, s)
	if err != nil {
		return nil, nil, err
	}
	// Per-row ranges first; PerTensor folds them afterwards.
	lo = make([]float32, m.rows*l.Groups)
	hi = make([]float32, m.rows*l.Groups)
	err = m.forRowChunks(name, func(mb matrix, r0, r1 int, conv, _ []float32) error {
		for r := r0; r < r1; r++ {
			if err := rowRanges(name, mb.row(r, conv), r, l, lo[r*l.Groups:], hi[r*l.Groups:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if l.PerTensor {
		lo, hi = foldRanges(lo, hi)
	}
	return lo, hi, nil
}

// checkPercentile returns the percentile a percentile search uses (0 for other methods),
// or the error SearchParams gives for one out of range.
func checkPercentile(name string, s Scheme, opt SearchOptions, method SearchMethod) (float64, error) {
	if method != SearchPercentile {
		return 0, nil
	}
	p := opt.Percentile
	if p == 0 {
		p = DefaultPercentile
	}
	if !(p > 0 && p <= 100) || (!s.Symmetric && p < 50) {
		return 0, fmt.Errorf("quant: tensor %q: percentile %v out of range (0, 100] (asymmetric: [50, 100])", name, p)
	}
	return p, nil
}

// rowScratch is a worker's scratch for rowParams: each group's range, and a group's
// values for the percentile sort.
type rowScratch struct{ lo, hi, vals []float32 }

// rowParams runs a row-local search on row r (its values in row): the scale (and zero) of
// each group go to scales[g] (zeros[g] when asymmetric). The arithmetic is SearchParams's:
// GroupRanges' min and max, then ComputeParams (max), percentileParams or mseSearchGroup.
func rowParams(name string, row []float32, r int, l Layout, s Scheme, method SearchMethod, p float64, scales []float32, zeros []int32, scratch *rowScratch) error {
	if len(scratch.lo) < l.Groups {
		scratch.lo, scratch.hi = make([]float32, l.Groups), make([]float32, l.Groups)
	}
	lo, hi := scratch.lo[:l.Groups], scratch.hi[:l.Groups]
	if err := rowRanges(name, row, r, l, lo, hi); err != nil {
		return err
	}
	for g := 0; g < l.Groups; g++ {
		vals := row[g*l.GroupSize : (g+1)*l.GroupSize]
		var sc float32
		var z int32
		switch method {
		case SearchMax:
			sc, z = s.ComputeParams(lo[g], hi[g])
		case SearchPercentile:
			scratch.vals = append(scratch.vals[:0], vals...)
			sc, z = percentileParams(scratch.vals, s, p)
		default:
			sc, z = mseSearchGroup(s, vals, lo[g], hi[g])
		}
		scales[g] = sc
		if zeros != nil {
			zeros[g] = z
		}
	}
	return nil
}

// rowRanges writes the min and max of each group of row r into lo[g], hi[g], as
// groupMinMax gives them; the first NaN or Inf in column order is an error.
func rowRanges(name string, row []float32, r int, l Layout, lo, hi []float32) error {
	lo, hi = lo[:l.Groups], hi[:l.Groups]
	if simdMinMax(l.GroupSize) {
		klo, khi := minMaxKeys(lo, hi, row, l.GroupSize)
		for g := range klo {
			if klo[g] > negInfKey && khi[g] < posInfKey {
				lo[g], hi[g] = keyFloat(klo[g]), keyFloat(khi[g])
				continue
			}
			// A NaN or Inf: the Go loop finds the first one.
			mn, mx, bad := groupMinMax(row[g*l.GroupSize : (g+1)*l.GroupSize])
			if bad >= 0 {
				return nonFinite(name, row[g*l.GroupSize+bad], r, g*l.GroupSize+bad)
			}
			lo[g], hi[g] = mn, mx
		}
		return nil
	}
	for g := 0; g < l.Groups; g++ {
		mn, mx, bad := groupMinMax(row[g*l.GroupSize : (g+1)*l.GroupSize])
		if bad >= 0 {
			return nonFinite(name, row[g*l.GroupSize+bad], r, g*l.GroupSize+bad)
		}
		lo[g], hi[g] = mn, mx
	}
	return nil
}

// groupMinMax returns the min and max of vals as the builtin min and max give them (exact,
// so independent of order; min(-0, +0) is -0), or the index of the first NaN/Inf as bad
// (-1 when all are finite).
//
// The builtins on floats compile to a chain of several dependent instructions per call
// (for NaN and signed zeros), which made this loop the slowest step of quantization. On
// finite values they are the minimum and maximum of a total order in which -0 < +0, and
// that order is the signed-integer order of floatKey. So the loop takes integer min and
// max of the keys, in two interleaved lanes, and looks for NaN and Inf only afterwards:
// they have the extreme keys (+Inf and positive NaNs above every finite key, -Inf and
// negative NaNs below), so one comparison of each result says whether there is any.
func groupMinMax(vals []float32) (mn, mx float32, bad int) {
	if len(vals) == 0 {
		return float32(math.Inf(1)), float32(math.Inf(-1)), -1
	}
	k := floatKey(vals[0])
	lo0, hi0, lo1, hi1 := k, k, k, k
	i := 1
	for ; i+2 <= len(vals); i += 2 {
		a, b := floatKey(vals[i]), floatKey(vals[i+1])
		lo0, hi0 = min(lo0, a), max(hi0, a)
		lo1, hi1 = min(lo1, b), max(hi1, b)
	}
	if i < len(vals) {
		a := floatKey(vals[i])
		lo0, hi0 = min(lo0, a), max(hi0, a)
	}
	lo, hi := min(lo0, lo1), max(hi0, hi1)
	if lo <= negInfKey || hi >= posInfKey {
		for j, x := range vals {
			if !isFinite32(x) {
				return 0, 0, j
			}
		}
	}
	return keyFloat(lo), keyFloat(hi), -1
}

// floatKey maps a float32 to an int32 whose signed order is the float order, with
// -0 < +0: negative floats (sign bit set, so negative as int32) get their magnitude bits
// flipped, so a larger magnitude gives a smaller key. keyFloat is its inverse (the same
// flip: the sign bit does not change).
func floatKey(x float32) int32 {
	b := int32(math.Float32bits(x))
	return b ^ int32(uint32(b>>31)>>1)
}

func keyFloat(k int32) float32 {
	return math.Float32frombits(uint32(k ^ int32(uint32(k>>31)>>1)))
}

var (
	posInfKey = floatKey(float32(math.Inf(1)))
	negInfKey = floatKey(float32(math.Inf(-1)))
)

// foldRanges reduces per-row ranges to the one range of a per-tensor scheme.
func foldRanges(lo, hi []float32) ([]float32, []float32) {
	mn, mx := lo[0], hi[0]
	for i := range lo {
		mn = min(mn, lo[i])
		mx = max(mx, hi[i])
	}
	return []float32{mn}, []float32{mx}
}
