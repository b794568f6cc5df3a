package gguf

import (
	"fmt"

	"github.com/autoq/autoq/tensor"
)

// Encode packs q into its block format's bytes, row after row, block after block, with
// ggml's layouts (ggml-common.h):
//
//	Q8_0 (34 B)  d:f16, qs[32]:int8
//	Q4_0 (18 B)  d:f16, qs[16]: element j in the low nibble of byte j, element j+16 in the high
//	Q4_1 (20 B)  d:f16, m:f16, qs[16] as Q4_0
//	Q5_0 (22 B)  d:f16, qh:uint32 LE (bit j = bit 4 of element j), qs[16]: low 4 bits as Q4_0
//	Q5_1 (24 B)  d:f16, m:f16, qh, qs[16] as Q5_0
//	Q4_K (144 B) d:f16, dmin:f16, scales[12] (8 6-bit scales and mins, see putScaleMinK4),
//	             qs[128]: for each 64 elements, byte l holds element l (low) and l+32 (high)
//	Q6_K (210 B) ql[128], qh[64], scales[16]:int8, d:f16; for each 128 elements, ql[l] holds
//	             the low 4 bits of elements l (low) and l+64 (high), ql[l+32] those of l+32
//	             and l+96, qh[l] the top 2 bits of l, l+32, l+64, l+96 (bits 0-1, 2-3, 4-5, 6-7)
func (q *Quantized) Encode() ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	bs, bb := q.Type.BlockSize(), q.Type.BlockBytes()
	nb := q.Rows * q.Cols / bs
	out := make([]byte, nb*bb)
	for b := 0; b < nb; b++ {
		dst := out[b*bb : (b+1)*bb]
		codes := q.Q[b*bs : (b+1)*bs]
		switch q.Type {
		case Q8_0:
			le.PutUint16(dst, q.D[b])
			for j, v := range codes {
				dst[2+j] = byte(v)
			}
		case Q4_0:
			le.PutUint16(dst, q.D[b])
			packNibbles(dst[2:18], codes)
		case Q4_1:
			le.PutUint16(dst, q.D[b])
			le.PutUint16(dst[2:], q.M[b])
			packNibbles(dst[4:20], codes)
		case Q5_0:
			le.PutUint16(dst, q.D[b])
			le.PutUint32(dst[2:], highBits(codes))
			packNibbles(dst[6:22], codes)
		case Q5_1:
			le.PutUint16(dst, q.D[b])
			le.PutUint16(dst[2:], q.M[b])
			le.PutUint32(dst[4:], highBits(codes))
			packNibbles(dst[8:24], codes)
		case Q4_K:
			le.PutUint16(dst, q.D[b])
			le.PutUint16(dst[2:], q.M[b])
			for j := 0; j < 8; j++ {
				putScaleMinK4(dst[4:16], j, uint8(q.Sc[b*8+j]), uint8(q.Mn[b*8+j]))
			}
			qs := dst[16:144]
			for c := 0; c < 4; c++ {
				for l := 0; l < 32; l++ {
					qs[32*c+l] = byte(codes[64*c+l]) | byte(codes[64*c+l+32])<<4
				}
			}
		case Q6_K:
			ql, qh, sc := dst[0:128], dst[128:192], dst[192:208]
			for h := 0; h < 2; h++ {
				L := codes[128*h : 128*h+128]
				for l := 0; l < 32; l++ {
					ql[64*h+l] = byte(L[l])&0xF | (byte(L[l+64])&0xF)<<4
					ql[64*h+l+32] = byte(L[l+32])&0xF | (byte(L[l+96])&0xF)<<4
					qh[32*h+l] = byte(L[l])>>4 | (byte(L[l+32])>>4)<<2 | (byte(L[l+64])>>4)<<4 | (byte(L[l+96])>>4)<<6
				}
			}
			for j := 0; j < 16; j++ {
				sc[j] = byte(q.Sc[b*16+j])
			}
			le.PutUint16(dst[208:], q.D[b])
		}
	}
	return out, nil
}

// packNibbles stores 32 codes' low 4 bits: element j low, element j+16 high, in byte j.
func packNibbles(dst []byte, codes []int8) {
	for j := 0; j < 16; j++ {
		dst[j] = byte(codes[j])&0xF | (byte(codes[j+16])&0xF)<<4
	}
}

// highBits collects bit 4 of each of 32 codes: bit j of the result is element j's.
func highBits(codes []int8) uint32 {
	var h uint32
	for j, v := range codes {
		h |= uint32(byte(v)>>4&1) << j
	}
	return h
}

// putScaleMinK4 stores the 6-bit scale ls and min lm of sub-block j (0..7) into Q4_K's 12
// scale bytes, as ggml packs them: sub-blocks 0-3 keep ls in the low 6 bits of byte j and
// lm in those of byte j+4; sub-blocks 4-7 keep their low 4 bits of ls and lm in byte j+4
// (low and high nibble) and their top 2 bits in the top 2 bits of bytes j-4 (ls) and j (lm).
func putScaleMinK4(s []byte, j int, ls, lm uint8) {
	if j < 4 {
		s[j] = s[j]&0xC0 | ls&63
		s[j+4] = s[j+4]&0xC0 | lm&63
		return
	}
	s[j+4] = ls&0xF | (lm&0xF)<<4
	s[j-4] = s[j-4]&0x3F | (ls>>4)<<6
	s[j] = s[j]&0x3F | (lm>>4)<<6
}

// scaleMinK4 is the inverse of putScaleMinK4 (ggml's get_scale_min_k4).
func scaleMinK4(s []byte, j int) (ls, lm uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xF | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// Unpack reads rows x cols elements of block format t from raw: the inverse of Encode.
func Unpack(name string, t Type, rows, cols int, raw []byte) (*Quantized, error) {
	g, err := NewGrid(name, t, rows, cols)
	if err != nil {
		return nil, err
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	nb := rows * cols / bs
	if len(raw) != nb*bb {
		return nil, fmt.Errorf("gguf: tensor %q: %d bytes for %dx%d %s (want %d)", name, len(raw), rows, cols, t, nb*bb)
	}
	q := &Quantized{Grid: *g, Q: make([]int8, rows*cols)}
	for b := 0; b < nb; b++ {
		src := raw[b*bb : (b+1)*bb]
		codes := q.Q[b*bs : (b+1)*bs]
		switch t {
		case Q8_0:
			q.D[b] = le.Uint16(src)
			for j := range codes {
				codes[j] = int8(src[2+j])
			}
		case Q4_0:
			q.D[b] = le.Uint16(src)
			unpackNibbles(codes, src[2:18], 0)
		case Q4_1:
			q.D[b], q.M[b] = le.Uint16(src), le.Uint16(src[2:])
			unpackNibbles(codes, src[4:20], 0)
		case Q5_0:
			q.D[b] = le.Uint16(src)
			unpackNibbles(codes, src[6:22], le.Uint32(src[2:]))
		case Q5_1:
			q.D[b], q.M[b] = le.Uint16(src), le.Uint16(src[2:])
			unpackNibbles(codes, src[8:24], le.Uint32(src[4:]))
		case Q4_K:
			q.D[b], q.M[b] = le.Uint16(src), le.Uint16(src[2:])
			for j := 0; j < 8; j++ {
				ls, lm := scaleMinK4(src[4:16], j)
				q.Sc[b*8+j], q.Mn[b*8+j] = int8(ls), int8(lm)
			}
			qs := src[16:144]
			for c := 0; c < 4; c++ {
				for l := 0; l < 32; l++ {
					codes[64*c+l] = int8(qs[32*c+l] & 0xF)
					codes[64*c+l+32] = int8(qs[32*c+l] >> 4)
				}
			}
		case Q6_K:
			ql, qh, sc := src[0:128], src[128:192], src[192:208]
			for h := 0; h < 2; h++ {
				L := codes[128*h : 128*h+128]
				for l := 0; l < 32; l++ {
					a, c, hb := ql[64*h+l], ql[64*h+l+32], qh[32*h+l]
					L[l] = int8(a&0xF | (hb&3)<<4)
					L[l+32] = int8(c&0xF | (hb>>2&3)<<4)
					L[l+64] = int8(a>>4 | (hb>>4&3)<<4)
					L[l+96] = int8(c>>4 | (hb>>6&3)<<4)
				}
			}
			for j := 0; j < 16; j++ {
				q.Sc[b*16+j] = int8(sc[j])
			}
			q.D[b] = le.Uint16(src[208:])
		}
	}
	return q, nil
}

func unpackNibbles(codes []int8, qs []byte, qh uint32) {
	for j := 0; j < 16; j++ {
		codes[j] = int8(qs[j]&0xF | byte(qh>>j&1)<<4)
		codes[j+16] = int8(qs[j]>>4 | byte(qh>>(j+16)&1)<<4)
	}
}

// Dequantize decodes rows x cols elements of type t from raw to float32 (F32, F16, BF16 and
// every block format of Grid), as llama.cpp's dequantize_row_* / ggml's conversions do.
func Dequantize(name string, t Type, rows, cols int, raw []byte) ([]float32, error) {
	n := rows * cols
	switch t {
	case F32, F16, BF16:
		if want := n * t.BlockBytes(); len(raw) != want || n <= 0 {
			return nil, fmt.Errorf("gguf: tensor %q: %d bytes for %dx%d %s (want %d)", name, len(raw), rows, cols, t, want)
		}
		out := make([]float32, n)
		for i := range out {
			switch t {
			case F32:
				out[i] = f32frombits(le.Uint32(raw[4*i:]))
			case F16:
				out[i] = tensor.F16ToF32(le.Uint16(raw[2*i:]))
			case BF16:
				out[i] = tensor.BF16ToF32(le.Uint16(raw[2*i:]))
			}
		}
		return out, nil
	}
	q, err := Unpack(name, t, rows, cols, raw)
	if err != nil {
		return nil, err
	}
	return q.Dequantize()
}

// EncodeFloat stores values as F32, F16 (round to nearest even) or BF16 (round to nearest
// even, ggml's GGML_FP32_TO_BF16), little-endian. NaN or Inf is an error naming the tensor.
func EncodeFloat(name string, t Type, values []float32) ([]byte, error) {
	out := make([]byte, len(values)*t.BlockBytes())
	for i, v := range values {
		if v-v != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: non-finite value %v at element %d", name, v, i)
		}
		switch t {
		case F32:
			le.PutUint32(out[4*i:], f32bits(v))
		case F16:
			h := tensor.F32ToF16(v)
			if hv := tensor.F16ToF32(h); hv-hv != 0 {
				return nil, fmt.Errorf("gguf: tensor %q: value %v at element %d overflows F16", name, v, i)
			}
			le.PutUint16(out[2*i:], h)
		case BF16:
			le.PutUint16(out[2*i:], tensor.F32ToBF16(v))
		default:
			return nil, fmt.Errorf("gguf: tensor %q: EncodeFloat takes F32, F16 or BF16, not %s", name, t)
		}
	}
	return out, nil
}
