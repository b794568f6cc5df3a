package tensor

import "fmt"

// PackInt4 packs values in [-8, 7] two per byte, element 2i in the low nibble of byte i.
// An odd count leaves the last high nibble zero. Values outside the range are an error.
func PackInt4(vals []int8) ([]byte, error) {
	out := make([]byte, (len(vals)+1)/2)
	for i, v := range vals {
		if v < -8 || v > 7 {
			return nil, fmt.Errorf("int4: value %d at %d is outside [-8, 7]", v, i)
		}
		n := byte(v) & 0x0f
		if i%2 == 0 {
			out[i/2] |= n
		} else {
			out[i/2] |= n << 4
		}
	}
	return out, nil
}

// UnpackInt4 unpacks n signed 4-bit values.
func UnpackInt4(packed []byte, n int) []int8 {
	out := make([]int8, n)
	for i := range out {
		b := packed[i/2]
		if i%2 == 1 {
			b >>= 4
		}
		out[i] = int8(b<<4) >> 4 // sign-extend the nibble
	}
	return out
}

// PackInt4Rows packs a [rows, cols] matrix row by row ((cols+1)/2 bytes a row).
func PackInt4Rows(vals []int8, rows, cols int) ([]byte, error) {
	if len(vals) != rows*cols {
		return nil, fmt.Errorf("int4: %d values for %dx%d", len(vals), rows, cols)
	}
	rb := (cols + 1) / 2
	out := make([]byte, rows*rb)
	for r := 0; r < rows; r++ {
		p, err := PackInt4(vals[r*cols : (r+1)*cols])
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		copy(out[r*rb:], p)
	}
	return out, nil
}

// UnpackInt4Rows unpacks a row-packed [rows, cols] matrix.
func UnpackInt4Rows(packed []byte, rows, cols int) []int8 {
	rb := (cols + 1) / 2
	out := make([]int8, 0, rows*cols)
	for r := 0; r < rows; r++ {
		out = append(out, UnpackInt4(packed[r*rb:(r+1)*rb], cols)...)
	}
	return out
}
