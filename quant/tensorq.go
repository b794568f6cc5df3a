package quant

import (
	"fmt"
	"io"

	"github.com/autoq/autoq/tensor"
)

// Quantization straight from a checkpoint tensor. The functions below take a 2-D F32, F16
// or BF16 *tensor.Tensor (possibly a view of a mapped file) and give the same bits as
// their []float32 counterparts on t.ToF32(), while converting one row at a time into a
// per-worker buffer: no float32 copy of the whole weight exists, except for the searches
// that look at the whole matrix at once (per-tensor percentile and mse, registered
// searches such as act-mse), which convert it once.

// rowLocal reports whether method chooses each row's parameters from that row alone.
func rowLocal(s Scheme, method SearchMethod) bool {
	return s.Granularity != PerTensor && (method == SearchMax || method == SearchPercentile || method == SearchMSE)
}

// QuantizeTensor is Quantize(name, t.ToF32(), rows, cols, s, opt), bit for bit, without
// the full float32 copy: for per-channel and per-group schemes under the max, percentile
// and mse searches each row is converted once, searched and quantized while it is in
// cache. The per-tensor max search reads t twice (ranges, then levels); the other
// whole-matrix searches convert t once.
func QuantizeTensor(name string, t *tensor.Tensor, s Scheme, opt SearchOptions) (*QTensor, error) {
	m, err := matrixOf(name, t)
	if err != nil {
		return nil, err
	}
	method := opt.method()
	if !rowLocal(s, method) {
		if method != SearchMax {
			return Quantize(name, m.all(), m.rows, m.cols, s, opt)
		}
		scales, zeros, err := searchMatrix(name, m, s, opt)
		if err != nil {
			return nil, err
		}
		return quantizeMatrix(name, m, s, scales, zeros)
	}
	return quantizeRows(name, m, s, method, opt, nil)
}

// QuantizeTensorWithError is QuantizeTensor followed by CompareTensor(name, t, q), with the
// same bits for both results; where QuantizeTensor goes row by row, each row's error is
// measured while the row is still in cache, so t is read and converted only once.
func QuantizeTensorWithError(name string, t *tensor.Tensor, s Scheme, opt SearchOptions) (*QTensor, TensorError, error) {
	m, err := matrixOf(name, t)
	if err != nil {
		return nil, TensorError{}, err
	}
	method := opt.method()
	if !rowLocal(s, method) {
		q, err := QuantizeTensor(name, t, s, opt)
		if err != nil {
			return nil, TensorError{}, err
		}
		e, err := CompareTensor(name, t, q)
		return q, e, err
	}
	return quantizeRowsWithError(name, m, s, method, opt)
}

// TensorSource is a 2-D weight in a file, for QuantizeReaderWithError.
type TensorSource struct {
	R          io.ReaderAt // the weight's row-major bytes, from offset 0
	DType      tensor.DType
	Rows, Cols int
	// Levels, when not nil and large enough, becomes the result's Data (cleared first):
	// a caller quantizing weights one after another then reuses one buffer instead of
	// touching fresh memory for each (page faults are most of the cost of a new buffer).
	Levels []byte
}

// QuantizeReaderWithError is QuantizeTensorWithError on the weight src reads, with the
// same bits. On the row-local path each worker reads a block of rows at a time with
// ReadAt into a buffer of its own, so the weight is neither mapped nor copied whole
// (reading a file through a mapping costs page faults that cost more than the copy). The
// other paths read the whole weight first.
func QuantizeReaderWithError(name string, src TensorSource, s Scheme, opt SearchOptions) (*QTensor, TensorError, error) {
	rows, cols := src.Rows, src.Cols
	if !src.DType.IsFloat() {
		return nil, TensorError{}, fmt.Errorf("tensor %q: weight dtype %s is not F32, F16 or BF16", name, src.DType)
	}
	if rows < 0 || cols < 0 {
		return nil, TensorError{}, fmt.Errorf("tensor %q: weight must be 2-D [out, in], got shape [%d %d]", name, rows, cols)
	}
	method := opt.method()
	if !rowLocal(s, method) {
		data := make([]byte, tensor.ByteSize(src.DType, []int{rows, cols}))
		if _, err := src.R.ReadAt(data, 0); err != nil {
			return nil, TensorError{}, fmt.Errorf("tensor %q: read: %w", name, err)
		}
		t, err := tensor.FromBytes(src.DType, []int{rows, cols}, data)
		if err != nil {
			return nil, TensorError{}, err
		}
		return QuantizeTensorWithError(name, t, s, opt)
	}
	m := matrix{rows: rows, cols: cols, dtype: src.DType, ra: src.R, levels: src.Levels}
	return quantizeRowsWithError(name, m, s, method, opt)
}

// quantizeRowsWithError is quantizeRows with each block's error sums, added up.
func quantizeRowsWithError(name string, m matrix, s Scheme, method SearchMethod, opt SearchOptions) (*QTensor, TensorError, error) {
	blocks := make([]errorSums, (m.rows+rowChunk-1)/rowChunk)
	q, err := quantizeRows(name, m, s, method, opt, blocks)
	if err != nil {
		return nil, TensorError{}, err
	}
	return q, tensorError(blocks, m.rows*m.cols), nil
}

// quantizeRows runs a row-local search and quantizes, one row at a time. When blocks is
// not nil it also sums each block of rowChunk rows' error into blocks[block], as
// CompareTensor does.
func quantizeRows(name string, m matrix, s Scheme, method SearchMethod, opt SearchOptions, blocks []errorSums) (*QTensor, error) {
	l, err := checkLayout(name, m.rows*m.cols, m.rows, m.cols, s)
	if err != nil {
		return nil, err
	}
	p, err := checkPercentile(name, s, opt, method)
	if err != nil {
		return nil, err
	}
	q := newQTensorIn(name, s, l, nil, nil, m.levels)
	q.Scales = make([]float32, l.NParams())
	if !s.Symmetric {
		q.Zeros = make([]int32, l.NParams())
	}
	rb := q.rowBytes()
	err = m.forRowChunks(name, func(mb matrix, r0, r1 int, conv, dq []float32) error {
		var scratch rowScratch
		var e errorSums
		for r := r0; r < r1; r++ {
			row, packed := mb.row(r, conv), q.Data[r*rb:(r+1)*rb]
			sc, zs := l.paramSlices(q.Scales, q.Zeros, r)
			if err := rowParams(name, row, r, l, s, method, p, sc, zs, &scratch); err != nil {
				return err
			}
			if err := quantizeRow(name, packed, dq, row, r, l, s, sc, zs); err != nil {
				return err
			}
			if blocks != nil {
				e.add(row, dq)
			}
		}
		if blocks != nil {
			blocks[r0/rowChunk] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// QuantizeTensorWithParams is QuantizeWithParams(name, t.ToF32(), rows, cols, s, scales,
// zeros), bit for bit, a row at a time.
func QuantizeTensorWithParams(name string, t *tensor.Tensor, s Scheme, scales []float32, zeros []int32) (*QTensor, error) {
	m, err := matrixOf(name, t)
	if err != nil {
		return nil, err
	}
	return quantizeMatrix(name, m, s, scales, zeros)
}

func quantizeMatrix(name string, m matrix, s Scheme, scales []float32, zeros []int32) (*QTensor, error) {
	l, err := checkLayout(name, m.rows*m.cols, m.rows, m.cols, s)
	if err != nil {
		return nil, err
	}
	if err := checkParams(name, l, s, scales, zeros); err != nil {
		return nil, err
	}
	q := newQTensor(name, s, l, scales, zeros)
	rb := q.rowBytes()
	err = m.forRowChunks(name, func(mb matrix, r0, r1 int, conv, dq []float32) error {
		for r := r0; r < r1; r++ {
			sc, zs := l.paramSlices(q.Scales, q.Zeros, r)
			if err := quantizeRow(name, q.Data[r*rb:(r+1)*rb], dq, mb.row(r, conv), r, l, s, sc, zs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}
