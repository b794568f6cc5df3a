package export

import "fmt"

// packInt32 packs signed b-bit values (1 <= b <= 8) of a [rows, cols] matrix into int32
// words the way compressed-tensors' pack_to_int32 does: each value is offset by 2^(b-1) to
// unsigned, k = floor(32/b) values go into one word with value j of the word in bits
// [j*b, (j+1)*b) (lowest bits first), along the packing dimension; values never straddle
// words, so 3-, 5-, 6- and 7-bit values leave the top 32 - k*b bits (2, 2, 2, 4) zero
// (10, 6, 5, 4 values a word). alongRows=false packs along columns (result
// [rows, ceil(cols/k)]), true packs along rows (result [ceil(rows/k), cols]), the layout
// of weight_zero_point. Padding values are zero bits.
func packInt32(vals []int32, rows, cols, bits int, alongRows bool) ([]int32, []int, error) {
	if bits < 1 || bits > 8 {
		return nil, nil, fmt.Errorf("pack: %d bits (want 1 to 8)", bits)
	}
	k := 32 / bits
	off := int32(1) << (bits - 1)
	mask := uint32(1)<<bits - 1
	var shape []int
	if alongRows {
		shape = []int{(rows + k - 1) / k, cols}
	} else {
		shape = []int{rows, (cols + k - 1) / k}
	}
	out := make([]uint32, shape[0]*shape[1])
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := vals[r*cols+c]
			if v < -off || v >= off {
				return nil, nil, fmt.Errorf("pack: value %d at [%d,%d] is outside the signed %d-bit range", v, r, c, bits)
			}
			u := uint32(v+off) & mask
			var word, slot int
			if alongRows {
				word, slot = (r/k)*cols+c, r%k
			} else {
				word, slot = r*shape[1]+c/k, c%k
			}
			out[word] |= u << (uint(slot) * uint(bits))
		}
	}
	res := make([]int32, len(out))
	for i, w := range out {
		res[i] = int32(w)
	}
	return res, shape, nil
}

// unpackInt32 is the inverse of packInt32 (compressed-tensors' unpack_from_int32): it
// returns the signed values of the [rows, cols] matrix, dropping padding.
func unpackInt32(words []int32, rows, cols, bits int, alongRows bool) ([]int32, error) {
	if bits < 1 || bits > 8 {
		return nil, fmt.Errorf("unpack: %d bits (want 1 to 8)", bits)
	}
	k := 32 / bits
	off := int32(1) << (bits - 1)
	mask := uint32(1)<<bits - 1
	var wr, wc int
	if alongRows {
		wr, wc = (rows+k-1)/k, cols
	} else {
		wr, wc = rows, (cols+k-1)/k
	}
	if len(words) != wr*wc {
		return nil, fmt.Errorf("unpack: %d words for a %dx%d matrix of %d-bit values (want %d)", len(words), rows, cols, bits, wr*wc)
	}
	out := make([]int32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			var word, slot int
			if alongRows {
				word, slot = (r/k)*cols+c, r%k
			} else {
				word, slot = r*wc+c/k, c%k
			}
			u := (uint32(words[word]) >> (uint(slot) * uint(bits))) & mask
			out[r*cols+c] = int32(u) - off
		}
	}
	return out, nil
}
