package calib

import (
	"fmt"
	"math"
	"math/bits"
)

// NewHistogram returns an empty histogram for the tensor called name.
func NewHistogram(name string) *Histogram { return &Histogram{Name: name} }

// ExpFor returns the bin exponent for a histogram whose largest |x| is absmax:
// floor(log2(absmax)) - 10, so absmax lands in bins [1024, 2048). It reads the exponent off
// the float's bits (exact, subnormals included). absmax must be finite and non-zero; the
// sign is ignored.
func ExpFor(absmax float32) int {
	b := math.Float32bits(absmax) & 0x7fffffff
	e := int(b >> 23)
	if e == 0 { // subnormal: value = m * 2^-149, floor(log2) = bitlen(m)-1-149
		return bits.Len32(b) - 1 - 149 - 10
	}
	return e - 127 - 10
}

// BinIndex returns floor(|v| / 2^exp), computed exactly with integer shifts of the
// significand. v must be finite with |v| < 2048 * 2^exp.
//
// |v| = sig * 2^(e-150) for a normal float32 (sig has the hidden bit), and
// sig * 2^-149 for a subnormal; dividing by 2^exp is a shift by exp+150-e (e >= 1).
func BinIndex(v float32, exp int) int {
	b := math.Float32bits(v) & 0x7fffffff
	e := int(b >> 23)
	sig := uint64(b & 0x7fffff)
	if e != 0 {
		sig |= 1 << 23
	} else {
		e = 1
	}
	shift := exp + 150 - e
	if shift >= 0 {
		return int(sig >> uint(shift)) // shifts >= 64 give 0 in Go
	}
	return int(sig << uint(-shift))
}

// Coarsen re-bins the histogram to the larger exponent exp: old bin i moves to bin
// i >> (exp - Exp). Exact because the edges nest. A smaller or equal exp is a no-op; on a
// histogram without an exponent yet (only zeros seen) it just sets Exp.
func (h *Histogram) Coarsen(exp int) {
	if !h.HasExp {
		h.Exp, h.HasExp = exp, true
		return
	}
	d := exp - h.Exp
	if d <= 0 {
		return
	}
	if d >= 12 { // everything lands in bin 0
		var sum uint64
		for i := range h.Counts {
			sum += h.Counts[i]
			h.Counts[i] = 0
		}
		h.Counts[0] = sum
	} else {
		var out [NumBins]uint64
		for i, c := range h.Counts {
			out[i>>uint(d)] += c
		}
		h.Counts = out
	}
	h.Exp = exp
}

// prepare makes the histogram ready to bin finite values whose largest magnitude has the
// float32 bits maxBits (sign cleared): it sets or raises Exp and updates AbsMax.
// It reports whether any value needs binning outside bin 0.
func (h *Histogram) prepare(maxBits uint32) bool {
	if maxBits == 0 {
		return false
	}
	absmax := math.Float32frombits(maxBits)
	need := ExpFor(absmax)
	if !h.HasExp || need > h.Exp {
		h.Coarsen(need)
	}
	if maxBits > math.Float32bits(h.AbsMax) {
		h.AbsMax = absmax
	}
	return true
}

// countBatch counts a batch of n finite values whose largest magnitude has the float32
// bits maxBits, raising Exp if needed. It reports whether the values still need binning:
// false when all are zero (counted in bin 0 here).
func (h *Histogram) countBatch(n int, maxBits uint32) bool {
	h.Count += uint64(n)
	if !h.prepare(maxBits) {
		h.Counts[0] += uint64(n)
		return false
	}
	return true
}

// tallyFinite reports whether the magnitude b (the bits of a value with the sign cleared,
// in a format whose +Inf is inf) is finite, counting it in NaN or Inf when it is not.
func tallyFinite[U uint16 | uint32](h *Histogram, b, inf U) bool {
	switch {
	case b > inf:
		h.NaN++
	case b == inf:
		h.Inf++
	default:
		return true
	}
	return false
}

// AddF32 adds a batch: first its absmax (raising Exp by exact coarsening if needed), then
// each value's bin. NaN and ±Inf are counted in NaN/Inf and skipped.
func (h *Histogram) AddF32(v []float32) {
	// Chunks keep the second (binning) pass in L1 cache. Splitting a batch cannot change
	// the result: the histogram depends only on the multiset of values.
	const chunk = 8192
	for len(v) > chunk {
		h.addF32(v[:chunk])
		v = v[chunk:]
	}
	h.addF32(v)
}

func (h *Histogram) addF32(v []float32) {
	var maxBits uint32
	for _, x := range v {
		maxBits = max(maxBits, math.Float32bits(x)&0x7fffffff)
	}
	if maxBits >= 0x7f800000 {
		h.addF32Checked(v)
		return
	}
	if !h.countBatch(len(v), maxBits) {
		return
	}
	if h.Exp < -126 { // tiny data: 2^-Exp is not a float32
		for _, x := range v {
			h.Counts[BinIndex(x, h.Exp)]++
		}
		return
	}
	mul := float32(math.Ldexp(1, -h.Exp))
	for _, x := range v {
		h.Counts[binMul(math.Float32bits(x), mul)]++
	}
}

// binMul is BinIndex for the float32 bits u and mul = 2^-exp with -126 <= exp (hot path):
// |v| * 2^-exp is exact in float32 (a power-of-two scaling that stays below 2048; a
// product that underflows is below 1 and truncates to 0 whatever its rounding), and the
// truncating conversion is the floor. The mask is a no-op for valid input (bins < 2048)
// that lets the compiler drop the bounds check. TestBinPathsAgree pins it to BinIndex.
func binMul(u uint32, mul float32) uint32 {
	return uint32(int32(math.Float32frombits(u&0x7fffffff)*mul)) & (NumBins - 1)
}

func (h *Histogram) addF32Checked(v []float32) {
	var maxBits uint32
	for _, x := range v {
		if b := math.Float32bits(x) & 0x7fffffff; tallyFinite(h, b, 0x7f800000) {
			maxBits = max(maxBits, b)
		}
	}
	if !h.prepare(maxBits) {
		for _, x := range v {
			if math.Float32bits(x)&0x7fffffff == 0 {
				h.Counts[0]++
				h.Count++
			}
		}
		return
	}
	for _, x := range v {
		if math.Float32bits(x)&0x7fffffff < 0x7f800000 {
			h.Counts[BinIndex(x, h.Exp)]++
			h.Count++
		}
	}
}

// AddChannelAbsMax folds v, viewed as rows of `channels` values (the last dimension), into
// the per-channel absmax. NaN and ±Inf are skipped (they are counted by the Add methods).
// It panics if len(v) is not a multiple of channels or channels differs from an earlier
// call: callers (Session) validate shapes first and report errors with the tensor name.
func (h *Histogram) AddChannelAbsMax(v []float32, channels int) {
	if channels <= 0 || len(v)%channels != 0 {
		panic(fmt.Sprintf("calib: AddChannelAbsMax(%q): %d values are not rows of %d channels", h.Name, len(v), channels))
	}
	if h.ChannelAbsMax == nil {
		h.ChannelAbsMax = make([]float32, channels)
	}
	if len(h.ChannelAbsMax) != channels {
		panic(fmt.Sprintf("calib: AddChannelAbsMax(%q): %d channels, earlier %d", h.Name, channels, len(h.ChannelAbsMax)))
	}
	cm := h.ChannelAbsMax
	for r := 0; r < len(v); r += channels {
		row := v[r : r+channels]
		for c, x := range row {
			b := math.Float32bits(x) & 0x7fffffff
			if b < 0x7f800000 && b > math.Float32bits(cm[c]) {
				cm[c] = math.Float32frombits(b)
			}
		}
	}
}

// Merge adds o into h exactly: both are coarsened to the larger exponent, then counts add.
// Names must match, and per-channel absmax lengths must agree when both have them. On error
// h is unchanged.
func (h *Histogram) Merge(o *Histogram) error {
	if h.Name != o.Name {
		return fmt.Errorf("calib: merge histograms of different tensors %q and %q", h.Name, o.Name)
	}
	if h.ChannelAbsMax != nil && o.ChannelAbsMax != nil && len(h.ChannelAbsMax) != len(o.ChannelAbsMax) {
		return fmt.Errorf("calib: merge %q: %d channels vs %d", h.Name, len(h.ChannelAbsMax), len(o.ChannelAbsMax))
	}
	src := o
	if o.HasExp && (!h.HasExp || o.Exp < h.Exp) {
		if h.HasExp {
			src = o.Clone()
			src.Coarsen(h.Exp)
		}
	}
	if o.HasExp && (!h.HasExp || o.Exp > h.Exp) {
		h.Coarsen(o.Exp)
	}
	for i := range h.Counts {
		h.Counts[i] += src.Counts[i]
	}
	if math.Float32bits(o.AbsMax) > math.Float32bits(h.AbsMax) {
		h.AbsMax = o.AbsMax
	}
	h.Count += o.Count
	h.NaN += o.NaN
	h.Inf += o.Inf
	if o.ChannelAbsMax != nil {
		if h.ChannelAbsMax == nil {
			h.ChannelAbsMax = make([]float32, len(o.ChannelAbsMax))
		}
		for c, x := range o.ChannelAbsMax {
			if math.Float32bits(x) > math.Float32bits(h.ChannelAbsMax[c]) {
				h.ChannelAbsMax[c] = x
			}
		}
	}
	return nil
}

// Clone returns a deep copy.
func (h *Histogram) Clone() *Histogram {
	c := *h
	if h.ChannelAbsMax != nil {
		c.ChannelAbsMax = append([]float32(nil), h.ChannelAbsMax...)
	}
	return &c
}

// NonZeroBins is the number of bins with a non-zero count.
func (h *Histogram) NonZeroBins() int {
	n := 0
	for _, c := range h.Counts {
		if c != 0 {
			n++
		}
	}
	return n
}
