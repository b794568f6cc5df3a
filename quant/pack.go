package quant

import (
	"encoding/binary"
	"fmt"
)

// Level storage: every width is one little-endian bit stream per row (qtensor.go has the
// rule). 8-bit levels are whole bytes and 4-bit levels nibbles, so those two keep simple
// loops of their own; 3, 5, 6 and 7 bits go through the generic stream, eight levels
// (exactly Bits bytes) at a time where a run of them starts on a byte.

// RowBytes is the storage of one row of cols levels of the given width: cols*bits bits
// rounded up to a whole byte (cols for 8 bits, (cols+1)/2 for 4, (3*cols+7)/8 for 3).
func RowBytes(bits, cols int) int { return (cols*bits + 7) / 8 }

// rowBytes is the storage of one of q's rows.
func (q *QTensor) rowBytes() int { return RowBytes(q.Scheme.Bits, q.Cols) }

// fieldMask is the mask of one level's bits.
func fieldMask(bits int) uint64 { return 1<<uint(bits) - 1 }

// signExtend turns a bits-wide field into a level: two's complement when symmetric,
// unsigned otherwise.
func signExtend(u uint64, bits int, symmetric bool) int32 {
	if !symmetric {
		return int32(u)
	}
	half := int32(1) << uint(bits-1)
	return int32(u^uint64(half)) - half
}

// putLevel stores level v as element c of a packed row: its low bits bits, two's
// complement (symmetric) or unsigned (asymmetric), at bits [c*bits, (c+1)*bits) of the
// row's little-endian bit stream. The other bits of the row are left as they are.
func putLevel(row []byte, bits, c int, v int32) {
	switch bits {
	case 8:
		row[c] = byte(v)
		return
	case 4:
		n := byte(v) & 0x0f
		if c%2 == 0 {
			row[c/2] = row[c/2]&0xf0 | n
		} else {
			row[c/2] = row[c/2]&0x0f | n<<4
		}
		return
	}
	o := c * bits
	i, sh := o>>3, uint(o&7)
	m := uint16(fieldMask(bits)) << sh
	u := uint16(uint64(v)&fieldMask(bits)) << sh
	row[i] = row[i]&^byte(m) | byte(u)
	if int(sh)+bits > 8 { // the field runs into the next byte
		row[i+1] = row[i+1]&^byte(m>>8) | byte(u>>8)
	}
}

// getLevel reads element c of a packed row (the inverse of putLevel).
func getLevel(row []byte, bits int, symmetric bool, c int) int32 {
	switch bits {
	case 8:
		if symmetric {
			return int32(int8(row[c]))
		}
		return int32(row[c])
	case 4:
		b := row[c/2]
		if c%2 == 1 {
			b >>= 4
		}
		return signExtend(uint64(b&0x0f), 4, symmetric)
	}
	o := c * bits
	i, sh := o>>3, uint(o&7)
	u := uint64(row[i])
	if int(sh)+bits > 8 {
		u |= uint64(row[i+1]) << 8
	}
	return signExtend(u>>sh&fieldMask(bits), bits, symmetric)
}

// putChunk stores the eight fields of u (level j in bits [j*bits, (j+1)*bits), as
// packChunk makes them) into dst[:bits]: eight levels starting on a byte fill exactly bits
// bytes.
func putChunk(dst []byte, bits int, u uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], u)
	copy(dst[:bits], b[:bits])
}

// getChunk reads the eight fields stored in src[:bits].
func getChunk(src []byte, bits int) uint64 {
	var b [8]byte
	copy(b[:bits], src[:bits])
	return binary.LittleEndian.Uint64(b[:])
}

// nibbles returns the low and high 4-bit levels of b, sign-extended when symmetric.
func nibbles(b byte, symmetric bool) (lo, hi int32) {
	if symmetric {
		return int32(int8(b<<4) >> 4), int32(int8(b) >> 4)
	}
	return int32(b & 0x0f), int32(b >> 4)
}

// PackLevels packs integer levels (row-major rows x cols, each within s.QRange()) into
// QTensor storage for s (qtensor.go), checking every level against the range.
func PackLevels(s Scheme, levels []int32, rows, cols int) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if rows < 0 || cols < 0 || len(levels) != rows*cols {
		return nil, fmt.Errorf("quant: %d levels for shape %dx%d", len(levels), rows, cols)
	}
	lo, hi := s.QRange()
	rb := RowBytes(s.Bits, cols)
	out := make([]byte, rows*rb)
	for r := 0; r < rows; r++ {
		dst := out[r*rb : (r+1)*rb]
		for c, v := range levels[r*cols : (r+1)*cols] {
			if v < lo || v > hi {
				return nil, fmt.Errorf("quant: level %d at row %d, col %d outside [%d, %d]", v, r, c, lo, hi)
			}
			putLevel(dst, s.Bits, c, v)
		}
	}
	return out, nil
}

// UnpackLevels is the inverse of PackLevels: the rows x cols levels stored in data.
func UnpackLevels(s Scheme, data []byte, rows, cols int) ([]int32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	rb := RowBytes(s.Bits, cols)
	if rows < 0 || cols < 0 || len(data) != rows*rb {
		return nil, fmt.Errorf("quant: %d bytes of %d-bit levels for shape %dx%d (want %d)", len(data), s.Bits, rows, cols, rows*rb)
	}
	out := make([]int32, rows*cols)
	for r := 0; r < rows; r++ {
		row := data[r*rb : (r+1)*rb]
		for c := 0; c < cols; c++ {
			out[r*cols+c] = getLevel(row, s.Bits, s.Symmetric, c)
		}
	}
	return out, nil
}
