package calib

import "math"

// Half-precision inputs. Every F16 and BF16 value is exactly a float32, and its bin is
// the bin of that float32 (TestF16AndBF16BinsMatchF32 checks every F16 value).

// binIndexF16 is BinIndex for IEEE half bits: |v| = N * 2^-24 with N an integer below
// 2^41, so the bin is N shifted by 24+exp.
func binIndexF16(h uint16, exp int) int {
	b := uint32(h & 0x7fff)
	e := b >> 10
	m := uint64(b & 0x3ff)
	if e != 0 {
		m |= 0x400
		e--
	}
	n := m << e
	if s := 24 + exp; s >= 0 {
		return int(n >> uint(s))
	} else {
		return int(n << uint(-s))
	}
}

// AddF16 adds a batch of IEEE half values given as raw bits (same rule as AddF32; every
// half is exactly a float32, so the bins are those of the converted values).
func (h *Histogram) AddF16(bits []uint16) {
	var maxBits uint16
	for _, x := range bits {
		maxBits = max(maxBits, x&0x7fff)
	}
	if maxBits >= 0x7c00 {
		h.addF16Checked(bits)
		return
	}
	h.Count += uint64(len(bits))
	if !h.prepare(f16MagBits(maxBits)) {
		h.Counts[0] += uint64(len(bits))
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

func (h *Histogram) addF16Checked(bits []uint16) {
	var maxBits uint16
	for _, x := range bits {
		b := x & 0x7fff
		switch {
		case b > 0x7c00:
			h.NaN++
		case b == 0x7c00:
			h.Inf++
		default:
			maxBits = max(maxBits, b)
		}
	}
	has := h.prepare(f16MagBits(maxBits))
	for _, x := range bits {
		b := x & 0x7fff
		if b >= 0x7c00 {
			continue
		}
		if has {
			h.Counts[binIndexF16(x, h.Exp)]++
		} else {
			h.Counts[0]++
		}
		h.Count++
	}
}

// AddBF16 adds a batch of bfloat16 values given as raw bits (a bfloat16 is the top half of
// a float32, so the bins are those of the converted values).
func (h *Histogram) AddBF16(bits []uint16) {
	var maxBits uint16
	for _, x := range bits {
		maxBits = max(maxBits, x&0x7fff)
	}
	if maxBits >= 0x7f80 {
		h.addBF16Checked(bits)
		return
	}
	h.Count += uint64(len(bits))
	if !h.prepare(uint32(maxBits) << 16) {
		h.Counts[0] += uint64(len(bits))
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

func (h *Histogram) addBF16Checked(bits []uint16) {
	var maxBits uint32
	for _, x := range bits {
		b := uint32(x&0x7fff) << 16
		switch {
		case b > 0x7f800000:
			h.NaN++
		case b == 0x7f800000:
			h.Inf++
		default:
			maxBits = max(maxBits, b)
		}
	}
	has := h.prepare(maxBits)
	for _, x := range bits {
		b := uint32(x&0x7fff) << 16
		if b >= 0x7f800000 {
			continue
		}
		if has {
			h.Counts[BinIndex(math.Float32frombits(b), h.Exp)]++
		} else {
			h.Counts[0]++
		}
		h.Count++
	}
}
