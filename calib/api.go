package calib

// Method is a calibrator: how a histogram becomes a clipping threshold (amax).
type Method uint8

const (
	MethodMax Method = iota + 1
	MethodPercentile
	MethodMSE
	MethodEntropy
)

// Options configures a calibrator.
type Options struct {
	Method     Method
	Percentile float64 // MethodPercentile, in (0,100]; default 99.99
	// Levels is the number of positive quantization levels: 127 for signed int8, 255 for
	// unsigned. Zero means 127.
	Levels int
	// ZeroSpike replaces hist[0] by hist[1] before the entropy search (Model Optimizer's
	// behaviour), so a spike of exact zeros does not dominate the search. The zero value
	// of Options has it off; DefaultOptions and the CLI turn it on, as Model Optimizer does.
	ZeroSpike bool
}

// levels is Levels with its default: 127 when not positive.
func (o Options) levels() int {
	if o.Levels <= 0 {
		return 127
	}
	return o.Levels
}

// Result is the threshold chosen for one histogram.
type Result struct {
	Amax float32 // clipping threshold; scale = Amax / Levels
	Bin  int     // threshold in bins (Amax = Bin * 2^Exp) for histogram methods; 0 for max
	KL   float64 // entropy: the minimal KL divergence; MSE: the minimal mean squared error
	// Empty is set when the histogram holds no non-zero finite value (nothing seen, or only
	// zeros, NaN and Inf): there is no threshold to choose and Amax is 0. Table writers
	// flag such tensors and the TensorRT cache writer leaves them out (a zero scale would
	// erase the tensor).
	Empty bool
}
