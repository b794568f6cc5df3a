package quant

import (
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/autoq/autoq/tensor"
)

// matrix is a 2-D F32, F16 or BF16 weight read one row at a time, so that a half-precision
// checkpoint (often a view of a mapped file) is quantized without a float32 copy of the
// whole tensor: F32 rows are views, F16/BF16 rows are converted into a row buffer that
// the caller reuses.
//
// A matrix may also be read from an io.ReaderAt (ra), a block of rows at a time: block
// reads rows [r0, r1) into a worker's buffer and returns a matrix whose data starts at row
// base = r0.
type matrix struct {
	rows, cols int
	dtype      tensor.DType
	f32        []float32   // F32 data
	u16        []uint16    // F16/BF16 bits
	base       int         // the row f32[0] or u16[0] belongs to
	ra         io.ReaderAt // when not nil, the row-major bytes: rows are read by block
	levels     []byte      // storage the levels may reuse (TensorSource.Levels)
}

// elemBytes is the size of one element of m.
func (m matrix) elemBytes() int {
	if m.dtype == tensor.F32 {
		return 4
	}
	return 2
}

// block returns m with rows [r0, r1) in memory: m itself when all of it is, else those
// rows read from m.ra into *raw (grown as needed).
func (m matrix) block(name string, r0, r1 int, raw *[]byte) (matrix, error) {
	if m.ra == nil {
		return m, nil
	}
	rb := m.cols * m.elemBytes()
	n := (r1 - r0) * rb
	if cap(*raw) < n {
		*raw = make([]byte, n)
	}
	b := (*raw)[:n]
	if _, err := m.ra.ReadAt(b, int64(r0)*int64(rb)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return matrix{}, fmt.Errorf("tensor %q: read rows %d to %d: %w", name, r0, r1-1, err)
	}
	out := matrix{rows: m.rows, cols: m.cols, dtype: m.dtype, base: r0}
	if n > 0 {
		if m.dtype == tensor.F32 {
			out.f32 = unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n/4)
		} else {
			out.u16 = unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n/2)
		}
	}
	return out, nil
}

// matrixOf checks that t is a 2-D float tensor whose data matches its shape.
func matrixOf(name string, t *tensor.Tensor) (matrix, error) {
	if t == nil {
		return matrix{}, fmt.Errorf("tensor %q: nil tensor", name)
	}
	if len(t.Shape) != 2 {
		return matrix{}, fmt.Errorf("tensor %q: weight must be 2-D [out, in], got shape %v", name, t.Shape)
	}
	if !t.DType.IsFloat() {
		return matrix{}, fmt.Errorf("tensor %q: weight dtype %s is not F32, F16 or BF16", name, t.DType)
	}
	if want := tensor.ByteSize(t.DType, t.Shape); len(t.Data) != want {
		return matrix{}, fmt.Errorf("tensor %q: %d data bytes for %s%v (want %d)", name, len(t.Data), t.DType, t.Shape, want)
	}
	m := matrix{rows: t.Shape[0], cols: t.Shape[1], dtype: t.DType}
	if t.DType == tensor.F32 {
		m.f32 = t.F32()
	} else {
		m.u16 = t.U16()
	}
	return m, nil
}

// rowBufs are one worker's buffers: conv for a converted row (nil for F32, whose rows
// are views), out for results (cols floats), raw for the rows matrix.block reads.
type rowBufs struct {
	conv, out []float32
	raw       []byte
}

// forRowChunks calls fn for chunks of rows [r0, r1) in parallel (parallelRows), with the
// chunk's rows in memory (mb: see block) and a pair of row buffers (conv for mb.row, out
// for results). Work is split into many chunks; a pool gives each worker's chunks the same
// buffers again instead of fresh ones per chunk. It returns the error of the first
// failing chunk.
func (m matrix) forRowChunks(name string, fn func(mb matrix, r0, r1 int, conv, out []float32) error) error {
	var pool sync.Pool
	return parallelRows(m.rows, func(r0, r1 int) error {
		b, ok := pool.Get().(*rowBufs)
		if !ok {
			b = &rowBufs{out: make([]float32, m.cols)}
			if m.dtype != tensor.F32 {
				b.conv = make([]float32, m.cols)
			}
		}
		defer pool.Put(b)
		mb, err := m.block(name, r0, r1, &b.raw)
		if err != nil {
			return err
		}
		return fn(mb, r0, r1, b.conv, b.out)
	})
}

// row returns row r as float32: a view for F32, converted into buf otherwise.
func (m matrix) row(r int, buf []float32) []float32 {
	lo, hi := (r-m.base)*m.cols, (r-m.base+1)*m.cols
	switch m.dtype {
	case tensor.F32:
		return m.f32[lo:hi]
	case tensor.F16:
		return convertRow(buf, m.u16[lo:hi], false)
	}
	return convertRow(buf, m.u16[lo:hi], true)
}

// all returns every value as float32: a view for F32, one converted copy otherwise. The
// searches that look at the whole matrix at once (per-tensor percentile and mse, act-mse)
// use it.
func (m matrix) all() []float32 {
	switch m.dtype {
	case tensor.F32:
		return m.f32
	case tensor.F16:
		return tensor.F16ToF32Slice(nil, m.u16)
	}
	return tensor.BF16ToF32Slice(nil, m.u16)
}
