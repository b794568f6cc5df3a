package calib

// NumBins is the number of bins of every calibration histogram.
const NumBins = 2048

// Histogram is an exactly mergeable histogram of |x| for one tensor.
//
// Bin rule (shared bit for bit with the CUDA kernels):
//   - The bin width is 2^Exp. A finite value v goes to bin floor(|v| / 2^Exp), computed
//     exactly from the float's bits (no rounding happens: it is a shift of the significand).
//   - Exp is the smallest exponent for which AbsMax < NumBins * 2^Exp, i.e.
//     Exp = floor(log2(AbsMax)) - 10 (the top value lands in bins [1024, 2048)).
//     Before any non-zero finite value has been seen, Exp is undefined (HasExp false) and
//     only bin 0 (zeros) can be counted.
//   - Adding a batch whose absmax needs a larger Exp first coarsens the histogram: going
//     from Exp to Exp+d, old bin i moves to bin i >> d (the edges nest, so this is exact).
//   - Merging two histograms coarsens both to the larger Exp and adds counts.
//
// So the final histogram depends only on the multiset of values seen, never on batch order
// or sharding. NaN and ±Inf are counted in NaN and Inf and are never binned nor included in
// AbsMax or Count.
type Histogram struct {
	Name   string
	Counts [NumBins]uint64
	Exp    int  // bin width is 2^Exp; meaningful when HasExp
	HasExp bool // false until a non-zero finite value was seen
	AbsMax float32
	Count  uint64 // finite values binned
	NaN    uint64
	Inf    uint64
	// ChannelAbsMax, when non-nil, holds the absmax of each channel (last dimension) seen.
	ChannelAbsMax []float32
}
