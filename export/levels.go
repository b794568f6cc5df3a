package export

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// levels returns a QTensor's integer levels in autoq's convention (signed for symmetric
// schemes, unsigned for asymmetric ones), row-major [Rows, Cols], decoded from the storage
// documented on quant.QTensor.
func levels(q *quant.QTensor) ([]int32, error) {
	n := q.Rows * q.Cols
	out := make([]int32, n)
	switch q.Scheme.Bits {
	case 8:
		if len(q.Data) != n {
			return nil, fmt.Errorf("tensor %q: %d bytes of 8-bit levels for %dx%d", q.Name, len(q.Data), q.Rows, q.Cols)
		}
		for i, b := range q.Data {
			if q.Scheme.Symmetric {
				out[i] = int32(int8(b))
			} else {
				out[i] = int32(b)
			}
		}
	case 4:
		rb := (q.Cols + 1) / 2
		if len(q.Data) != q.Rows*rb {
			return nil, fmt.Errorf("tensor %q: %d bytes of packed 4-bit levels for %dx%d (want %d)", q.Name, len(q.Data), q.Rows, q.Cols, q.Rows*rb)
		}
		for r := 0; r < q.Rows; r++ {
			for c := 0; c < q.Cols; c++ {
				b := q.Data[r*rb+c/2]
				if c%2 == 1 {
					b >>= 4
				}
				b &= 0x0f
				if q.Scheme.Symmetric {
					out[r*q.Cols+c] = int32(int8(b<<4) >> 4)
				} else {
					out[r*q.Cols+c] = int32(b)
				}
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q: %d-bit levels are not supported", q.Name, q.Scheme.Bits)
	}
	return out, nil
}

// storeLevels is the inverse of levels: it encodes levels (autoq convention) into the
// QTensor storage for scheme s.
func storeLevels(s quant.Scheme, lv []int32, rows, cols int) ([]byte, error) {
	lo, hi := s.QRange()
	for i, v := range lv {
		if v < lo || v > hi {
			return nil, fmt.Errorf("level %d at element %d is outside [%d, %d]", v, i, lo, hi)
		}
	}
	switch s.Bits {
	case 8:
		out := make([]byte, len(lv))
		for i, v := range lv {
			out[i] = byte(v)
		}
		return out, nil
	case 4:
		rb := (cols + 1) / 2
		out := make([]byte, rows*rb)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				n := byte(lv[r*cols+c]) & 0x0f
				if c%2 == 1 {
					n <<= 4
				}
				out[r*rb+c/2] |= n
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%d-bit levels are not supported", s.Bits)
}
