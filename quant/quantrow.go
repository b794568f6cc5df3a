package quant

// quantizeRow writes the levels of row r (its float32 values in row) into dst, its packed
// storage (zeroed), with scales[g] and zeros[g] (nil when symmetric) for group g. Each level
// is s.QuantizeValue's: clamp(rne(x/scale) + zero, QRange). A NaN or Inf is an error naming
// the element; the row's elements are checked in column order.
//
// The common layouts get a loop of their own (8-bit; 4-bit with byte-aligned groups of
// even size, two levels to a byte; 3-, 5-, 6- and 7-bit levels eight at a time), others go
// through putLevel. All store the same bits. Where the AVX2 kernel applies (simd.go) it
// quantizes whole groups (or, for one group per row, all but the last columns%32) first.
func quantizeRow(name string, dst []byte, deq, row []float32, r int, l Layout, s Scheme, scales []float32, zeros []int32) error {
	qlo, qhi := s.QRange()
	lo, hi := float32(qlo), float32(qhi)
	done := simdQuantCols(l, s) // leading columns of each group the kernel quantizes
	if done > 0 && !quantGroupsSIMD(dst, deq, row, l, done, s, scales, zeros, lo, hi) {
		done = 0 // a NaN or Inf: the Go loop below finds and names it
	}
	if done == l.GroupSize {
		return nil
	}
	for g := 0; g < l.Groups; g++ {
		sc, z := scales[g], float32(0)
		if zeros != nil {
			z = float32(zeros[g]) // exact: |zero| <= 255
		}
		c0 := g*l.GroupSize + done
		if err := quantizeSpan(name, dst, deq, row[c0:(g+1)*l.GroupSize], r, c0, s.Bits, sc, z, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// quantizeSpan quantizes vals, columns [c0, c0+len(vals)) of row r, all in one group
// (scale sc, zero point z), into the packed row dst and deq[c0:].
func quantizeSpan(name string, dst []byte, deq, vals []float32, r, c0, bits int, sc, z, lo, hi float32) error {
	switch {
	case bits == 8:
		out := dst[c0 : c0+len(vals)]
		dq := deq[c0 : c0+len(vals)]
		for j, x := range vals {
			if !isFinite32(x) {
				return nonFinite(name, x, r, c0+j)
			}
			q := level(x, sc, z, lo, hi)
			out[j] = byte(int32(q))
			dq[j] = (q - z) * sc
		}
	case bits == 4 && c0%2 == 0 && len(vals)%2 == 0:
		out := dst[c0/2 : (c0+len(vals))/2]
		dq := deq[c0 : c0+2*len(out)]
		for j := range out {
			a, b := vals[2*j], vals[2*j+1]
			if !isFinite32(a) || !isFinite32(b) {
				if !isFinite32(a) {
					return nonFinite(name, a, r, c0+2*j)
				}
				return nonFinite(name, b, r, c0+2*j+1)
			}
			qa, qb := level(a, sc, z, lo, hi), level(b, sc, z, lo, hi)
			out[j] = byte(int32(qa))&0x0f | byte(int32(qb))<<4
			dq[2*j], dq[2*j+1] = (qa-z)*sc, (qb-z)*sc
		}
	default:
		return quantizeStream(name, dst, deq, vals, r, c0, bits, sc, z, lo, hi)
	}
	return nil
}

// quantizeStream quantizes vals (columns [c0, c0+len(vals)) of row r) as bits-wide levels
// (3, 5, 6, 7; 4 where the span does not start and end on a byte) into the packed row dst
// (putLevel's little-endian bit stream, whatever the width) and their dequantized values
// into deq[c0:]: the columns before the first multiple of 8 and after the last one level
// by level, the rest eight levels (bits bytes) at a time.
func quantizeStream(name string, dst []byte, deq, vals []float32, r, c0, bits int, sc, z, lo, hi float32) error {
	one := func(j int) error {
		x := vals[j]
		if !isFinite32(x) {
			return nonFinite(name, x, r, c0+j)
		}
		q := level(x, sc, z, lo, hi)
		putLevel(dst, bits, c0+j, int32(q))
		deq[c0+j] = (q - z) * sc
		return nil
	}
	j := 0
	for ; j < len(vals) && (c0+j)%8 != 0; j++ {
		if err := one(j); err != nil {
			return err
		}
	}
	m := fieldMask(bits)
	for ; j+8 <= len(vals); j += 8 {
		var u uint64
		for k, x := range vals[j : j+8] {
			if !isFinite32(x) {
				return nonFinite(name, x, r, c0+j+k)
			}
			q := level(x, sc, z, lo, hi)
			u |= uint64(int64(q)) & m << uint(k*bits)
			deq[c0+j+k] = (q - z) * sc
		}
		putChunk(dst[(c0+j)/8*bits:], bits, u)
	}
	for ; j < len(vals); j++ {
		if err := one(j); err != nil {
			return err
		}
	}
	return nil
}

// level is Scheme.QuantizeValue, clamp(rne(x/scale) + zero, [lo, hi]) with zero, lo and
// hi (the QRange) given as float32, written so that the hot loops keep everything in registers: the round
// to nearest even is float32 arithmetic instead of math.RoundToEven (whose fallback call
// made the compiler spill the loop's variables). The levels are the same:
//
//   - for |v| <= 2^22, v + 1.5*2^23 lies in [2^23, 2^24), where float32 steps are 1, so the
//     addition itself rounds v to an integer, ties to even; subtracting 1.5*2^23 again is
//     exact. The result may be +0 where RoundToEven gives -0; both add to zero alike and
//     convert to level 0 (and -0 < lo is false like +0 < lo).
//   - beyond 2^22, v is first clamped to +-2^22: rne(v) + zero is then far outside [lo, hi]
//     on the same side (|zero| <= 255), so the final clamp picks the same bound. A quotient
//     that overflowed to +-Inf clamps the same way.
//
// (x is finite and scale finite and positive, so v is never NaN.)
func level(x, scale, zero, lo, hi float32) float32 {
	const limit, magic = 0x1p22, 0x1.8p23
	v := x / scale
	if v > limit {
		v = limit
	} else if v < -limit {
		v = -limit
	}
	q := float32(float32(v+magic)-magic) + zero
	if q < lo {
		q = lo
	}
	if q > hi {
		q = hi
	}
	return q
}
