package quant

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// SearchMethod is how clipping ranges (and so scales) are chosen.
type SearchMethod uint8

const (
	SearchMax        SearchMethod = iota + 1 // absmax (sym) or min/max (asym) of each group
	SearchPercentile                         // the Percentile-th percentile of |x| (sym) or of x on each side (asym)
	SearchMSE                                // grid over clipping ratios minimising the weight reconstruction error
	// 4 is reserved for "act-mse" (activation-weighted MSE). Its file declares
	// `const SearchActMSE SearchMethod = 4` and, in an init function, calls
	// registerSearch(SearchActMSE, "act-mse", run); run gets the validated Layout and the
	// options (ColWeights carries the activation statistics).
)

// DefaultPercentile is the percentile SearchPercentile uses when SearchOptions.Percentile is 0.
const DefaultPercentile = 99.99

// MSEGridSteps is the number of clipping ratios SearchMSE tries: r_i = (100-i)/100 for
// i = 0..MSEGridSteps-1, that is 1.00 down to 0.21.
const MSEGridSteps = 80

// SearchOptions configures a scale search. The zero value is the max search.
type SearchOptions struct {
	Method     SearchMethod // 0 means SearchMax
	Percentile float64      // for SearchPercentile, in (0, 100] (asymmetric: [50, 100]); 0 means 99.99
	// ColWeights optionally weights the squared error of each input column (len cols), for
	// searches that weigh by activation statistics (act-mse). max, percentile and mse
	// ignore it.
	ColWeights []float32
}

// method is o.Method, SearchMax when unset.
func (o SearchOptions) method() SearchMethod {
	if o.Method == 0 {
		return SearchMax
	}
	return o.Method
}

// searchImpl is a search method defined outside this file (such as act-mse).
type searchImpl struct {
	name string
	run  func(name string, w []float32, l Layout, s Scheme, opt SearchOptions) ([]float32, []int32, error)
}

var searchNames = map[SearchMethod]string{SearchMax: "max", SearchPercentile: "percentile", SearchMSE: "mse"}

var extraSearches = map[SearchMethod]searchImpl{}

// registerSearch adds a search method; call it from an init function in the file that
// implements the method. It makes ParseSearch, String and SearchParams know the method.
func registerSearch(m SearchMethod, name string, run func(name string, w []float32, l Layout, s Scheme, opt SearchOptions) ([]float32, []int32, error)) {
	if _, dup := searchNames[m]; dup {
		panic(fmt.Sprintf("quant: search method %d registered twice", m))
	}
	searchNames[m] = name
	extraSearches[m] = searchImpl{name: name, run: run}
}

func (m SearchMethod) String() string {
	if n, ok := searchNames[m]; ok {
		return n
	}
	return fmt.Sprintf("SearchMethod(%d)", uint8(m))
}

// ParseSearch accepts "max", "percentile", "mse" (and any registered method's name).
func ParseSearch(s string) (SearchMethod, error) {
	var names []string
	for m, n := range searchNames {
		if n == s {
			return m, nil
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("unknown search method %q (want one of %s)", s, strings.Join(names, ", "))
}

// SearchParams chooses scales (and zero points when asymmetric) for every scale group of
// the rows x cols matrix w ([rows, groups] row-major, one entry for PerTensor):
//
//   - max: lo/hi of each group (GroupRanges), then Params.
//   - percentile (p): for a group of n values, k = ceil(p/100*n) computed in float64,
//     clamped to [1, n]. Symmetric: amax = the k-th smallest |x| (index k-1 of the sorted
//     |x|), params = ComputeParams(-amax, amax). Asymmetric: with x sorted ascending,
//     hi = x[k-1], lo = x[n-k], params = ComputeParams(lo, hi).
//   - mse: see mseSearchGroup.
//
// PerTensor treats the whole matrix as one group (row-major order). NaN/Inf in w is an
// error naming the tensor and element; so are bad shapes and group sizes.
func SearchParams(name string, w []float32, rows, cols int, s Scheme, opt SearchOptions) (scales []float32, zeros []int32, err error) {
	method := opt.method()
	switch method {
	case SearchMax:
		lo, hi, err := GroupRanges(name, w, rows, cols, s)
		if err != nil {
			return nil, nil, err
		}
		scales, zeros = Params(s, lo, hi)
		return scales, zeros, nil
	case SearchPercentile, SearchMSE:
	default:
		if _, ok := extraSearches[method]; !ok {
			return nil, nil, fmt.Errorf("quant: tensor %q: unknown search method %v", name, method)
		}
	}
	// GroupRanges validates shape and values (NaN/Inf) for all the searches below.
	lo, hi, err := GroupRanges(name, w, rows, cols, s)
	if err != nil {
		return nil, nil, err
	}
	l, _ := checkLayout(name, len(w), rows, cols, s)
	switch method {
	case SearchPercentile:
		p := opt.Percentile
		if p == 0 {
			p = DefaultPercentile
		}
		if !(p > 0 && p <= 100) || (!s.Symmetric && p < 50) {
			return nil, nil, fmt.Errorf("quant: tensor %q: percentile %v out of range (0, 100] (asymmetric: [50, 100])", name, p)
		}
		scales, zeros = percentileSearch(w, l, s, p)
		return scales, zeros, nil
	case SearchMSE:
		scales, zeros = mseSearch(w, l, s, lo, hi)
		return scales, zeros, nil
	}
	return extraSearches[method].run(name, w, l, s, opt)
}

// groupValues copies scale group (r, g) of w into buf in column order; for PerTensor the
// whole matrix in row-major order.
func groupValues(buf, w []float32, l Layout, r, g int) []float32 {
	buf = buf[:0]
	if l.PerTensor {
		return append(buf, w...)
	}
	return append(buf, w[r*l.Cols+g*l.GroupSize:r*l.Cols+(g+1)*l.GroupSize]...)
}

// percentileK is k = ceil(p/100*n) in float64, clamped to [1, n].
func percentileK(p float64, n int) int {
	k := int(math.Ceil(p / 100 * float64(n)))
	return min(max(k, 1), n)
}

// percentileParams computes the percentile (scale, zero) of one group; vals is reordered.
func percentileParams(vals []float32, s Scheme, p float64) (float32, int32) {
	n := len(vals)
	k := percentileK(p, n)
	if s.Symmetric {
		for i, v := range vals {
			vals[i] = float32(math.Abs(float64(v)))
		}
		slices.Sort(vals)
		amax := vals[k-1]
		return s.ComputeParams(-amax, amax)
	}
	slices.Sort(vals)
	return s.ComputeParams(vals[n-k], vals[k-1])
}

func percentileSearch(w []float32, l Layout, s Scheme, p float64) ([]float32, []int32) {
	scales := make([]float32, l.NParams())
	var zeros []int32
	if !s.Symmetric {
		zeros = make([]int32, l.NParams())
	}
	set := func(i int, sc float32, z int32) {
		scales[i] = sc
		if zeros != nil {
			zeros[i] = z
		}
	}
	if l.PerTensor {
		sc, z := percentileParams(groupValues(nil, w, l, 0, 0), s, p)
		set(0, sc, z)
		return scales, zeros
	}
	_ = parallelRows(l.Rows, func(r0, r1 int) error {
		buf := make([]float32, 0, l.GroupSize)
		for r := r0; r < r1; r++ {
			for g := 0; g < l.Groups; g++ {
				sc, z := percentileParams(groupValues(buf, w, l, r, g), s, p)
				set(r*l.Groups+g, sc, z)
			}
		}
		return nil
	})
	return scales, zeros
}
