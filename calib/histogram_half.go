package calib

import "math"

// Half-precision inputs. Every F16 and BF16 value is exactly a float32, and its bin is
// the bin of that float32 (TestF16AndBF16BinsMatchF32 checks every F16 value).

// binIndexF16 is BinIndex for IEEE half bits: |v| = N * 2^-24 with N an integer below
// 2^41 (f16N), so the bin is N shifted by 24+exp.
func binIndexF16(h uint16, exp int) int {
	n := f16N(h)
	if s := 24 + exp; s >= 0 {
		return int(n >> uint(s))
	} else {
		return int(n << uint(-s))
	}
}

// AddF16 adds a batch of IEEE half values given as raw bits (same rule as AddF32; every
// half is exactly a float32, so the bins are those of the converted values).
func (h *Histogram) AddF16(bits []uint16) {
	if !h.addHalf(bits, f16Format) {
		return
	}
	exp := h.Exp
	if len(bits) < 1<<14 {
		for _, x := range bits {
			h.Counts[binIndexF16(x, exp)&(NumBins-1)]++
		}
		return
	}
	// Large batch: a table from the 15-bit magnitude to the bin (exact by construction).
	lut := f16LUT(exp)
	for _, x := range bits {
		h.Counts[lut[x&0x7fff]&(NumBins-1)]++
	}
}

// f16LUT returns the bin of every finite half magnitude at exponent exp.
func f16LUT(exp int) *[0x8000]uint16 {
	lut := new([0x8000]uint16)
	for b := 0; b < 0x7c00; b++ {
		lut[b] = uint16(binIndexF16(uint16(b), exp))
	}
	return lut
}

// f16N returns N with |half| = N * 2^-24 (exact integer, below 2^41).
func f16N(x uint16) uint64 {
	b := uint32(x & 0x7fff)
	e := b >> 10
	m := uint64(b & 0x3ff)
	if e != 0 {
		m |= 0x400
		e--
	}
	return m << e
}

// f16MagBits returns the float32 bits of the finite half magnitude b (sign cleared).
func f16MagBits(b uint16) uint32 {
	return math.Float32bits(float32(f16N(b)) * (1.0 / (1 << 24)))
}

// AddBF16 adds a batch of bfloat16 values given as raw bits (a bfloat16 is the top half of
// a float32, so the bins are those of the converted values).
func (h *Histogram) AddBF16(bits []uint16) {
	if !h.addHalf(bits, bf16Format) {
		return
	}
	if h.Exp < -126 {
		for _, x := range bits {
			h.Counts[BinIndex(math.Float32frombits(uint32(x)<<16), h.Exp)]++
		}
		return
	}
	mul := float32(math.Ldexp(1, -h.Exp))
	for _, x := range bits {
		h.Counts[binMul(uint32(x)<<16, mul)]++
	}
}

// halfFormat is what the Add path needs to know of a 16-bit float format beyond binning.
type halfFormat struct {
	inf uint16                      // the bits of +Inf; larger magnitudes are NaN
	f32 func(mag uint16) uint32     // the float32 bits of a finite magnitude
	bin func(x uint16, exp int) int // the bin of a finite value at exponent exp
}

var (
	f16Format  = halfFormat{inf: 0x7c00, f32: f16MagBits, bin: binIndexF16}
	bf16Format = halfFormat{inf: 0x7f80, f32: bf16MagBits, bin: func(x uint16, exp int) int {
		return BinIndex(math.Float32frombits(bf16MagBits(x&0x7fff)), exp)
	}}
)

// bf16MagBits returns the float32 bits of a bfloat16 magnitude: its top half.
func bf16MagBits(b uint16) uint32 { return uint32(b) << 16 }

// addHalf is the part of AddF16 and AddBF16 before the binning: the batch's largest
// magnitude (a batch with NaN or ±Inf is added by the checked path), the count and the
// exponent. It reports whether the values are still to be binned (at h.Exp).
func (h *Histogram) addHalf(bits []uint16, f halfFormat) bool {
	var maxBits uint16
	for _, x := range bits {
		maxBits = max(maxBits, x&0x7fff)
	}
	if maxBits >= f.inf {
		h.addHalfChecked(bits, f)
		return false
	}
	return h.countBatch(len(bits), f.f32(maxBits))
}

func (h *Histogram) addHalfChecked(bits []uint16, f halfFormat) {
	var maxBits uint16
	for _, x := range bits {
		if b := x & 0x7fff; tallyFinite(h, b, f.inf) {
			maxBits = max(maxBits, b)
		}
	}
	has := h.prepare(f.f32(maxBits))
	for _, x := range bits {
		if x&0x7fff >= f.inf {
			continue
		}
		if has {
			h.Counts[f.bin(x, h.Exp)]++
		} else {
			h.Counts[0]++
		}
		h.Count++
	}
}
