//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Matrix is a [Rows, Cols] row-major F32/F16/BF16 matrix in device memory.
type Matrix struct {
	Buf        *Buffer
	DType      tensor.DType
	Rows, Cols int
}

func (m Matrix) check(op string) error {
	if m.Buf == nil || m.Buf.closed {
		return fmt.Errorf("cuda: %s: no device buffer", op)
	}
	if !m.DType.IsFloat() {
		return fmt.Errorf("cuda: %s: dtype %s is not F32, F16 or BF16", op, m.DType)
	}
	if m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("cuda: %s: empty matrix %dx%d", op, m.Rows, m.Cols)
	}
	if need := m.Rows * m.Cols * m.DType.Bits() / 8; need > m.Buf.size {
		return fmt.Errorf("cuda: %s: %dx%d %s needs %d bytes, buffer has %d", op, m.Rows, m.Cols, m.DType, need, m.Buf.size)
	}
	return nil
}

// grouping is a scheme's grouping for a matrix of cols columns.
type grouping struct {
	groupCols, groups int
	perTensor         bool
	nParams           int
}

func schemeLayout(s quant.Scheme, rows, cols int) (grouping, error) {
	if err := s.Validate(); err != nil {
		return grouping{}, err
	}
	size, groups, err := s.GroupCols(cols)
	if err != nil {
		return grouping{}, err
	}
	l := grouping{groupCols: size, groups: groups, perTensor: s.Granularity == quant.PerTensor, nParams: rows * groups}
	if l.perTensor {
		l.nParams = 1
	}
	return l, nil
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func ptrOrNil(b *Buffer) unsafe.Pointer {
	if b == nil {
		return nil
	}
	return b.ptr
}

func needBytes(op string, b *Buffer, n int) error {
	if b == nil || b.closed || b.size < n {
		return fmt.Errorf("cuda: %s: output buffer too small (need %d bytes)", op, n)
	}
	return nil
}

// needZeros checks the zero points of n groups (int32 each), which only asymmetric schemes have.
func needZeros(op string, s quant.Scheme, zeros *Buffer, n int) error {
	if s.Symmetric {
		return nil
	}
	return needBytes(op, zeros, 4*n)
}

// needIfSet is needBytes for an optional output (nil: not wanted).
func needIfSet(op string, b *Buffer, n int) error {
	if b == nil {
		return nil
	}
	return needBytes(op, b, n)
}

// paramLayout checks m and returns s's grouping of it, after checking that each of bufs holds
// 4 bytes (one float32 or int32) per group.
func (m Matrix) paramLayout(op string, s quant.Scheme, bufs ...*Buffer) (grouping, error) {
	if err := m.check(op); err != nil {
		return grouping{}, err
	}
	l, err := schemeLayout(s, m.Rows, m.Cols)
	if err != nil {
		return grouping{}, err
	}
	return l, needAllBytes(op, 4*l.nParams, bufs...)
}

// needAllBytes is needBytes for each of bufs.
func needAllBytes(op string, n int, bufs ...*Buffer) error {
	for _, b := range bufs {
		if err := needBytes(op, b, n); err != nil {
			return err
		}
	}
	return nil
}

// GroupRangesDev writes per-group min/max of m into lo, hi (float32) and a non-finite flag
// per group into nonfinite (int32), [rows, groups] or one entry for PerTensor.
func GroupRangesDev(m Matrix, s quant.Scheme, lo, hi, nonfinite *Buffer) error {
	l, err := m.paramLayout("group ranges", s, lo, hi, nonfinite)
	if err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_group_ranges(C.int(m.Buf.dev), m.Buf.ptr, C.int(m.DType), C.int64_t(m.Rows), C.int64_t(m.Cols),
			C.int64_t(l.groupCols), b2i(l.perTensor), (*C.float)(lo.ptr), (*C.float)(hi.ptr), (*C.int32_t)(nonfinite.ptr), nil)
	})
}

// ComputeParamsDev applies quant.Scheme.ComputeParams to n (lo, hi) pairs on the device.
// zeros may be nil for symmetric schemes.
func ComputeParamsDev(dev int, s quant.Scheme, lo, hi *Buffer, n int, scales, zeros *Buffer) error {
	const op = "compute params"
	if err := needAllBytes(op, 4*n, lo, hi, scales); err != nil {
		return err
	}
	if err := needZeros(op, s, zeros, n); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_compute_params(C.int(dev), (*C.float)(lo.ptr), (*C.float)(hi.ptr), C.int64_t(n), C.int(s.Bits),
			b2i(s.Symmetric), (*C.float)(scales.ptr), (*C.int32_t)(ptrOrNil(zeros)), nil)
	})
}

// qRowBytes is the QTensor row storage, quant.RowBytes: ceil(cols*bits/8) bytes (cols for
// 8 bits, (cols+1)/2 for 4).
func qRowBytes(bits, cols int) int { return quant.RowBytes(bits, cols) }

// QuantizeDev quantizes m with scales/zeros into q (QTensor data layout) with the first
// kernel of the dispatch table (OpQuantize) that fits the call; nonfinite (one int32) is set
// to 1 if m holds a NaN or Inf.
func QuantizeDev(m Matrix, s quant.Scheme, scales, zeros, q, nonfinite *Buffer) error {
	k, err := quantizeKernel(m, s, q)
	if err != nil {
		return err
	}
	return QuantizeDevWith(k, m, s, scales, zeros, q, nonfinite)
}

// quantizeKernels maps the quantize kernels to the C enum.
var quantizeKernels = map[Kernel]C.int{
	QuantizePersistent:  C.AUTOQ_QUANTIZE_PERSISTENT,
	QuantizeRows:        C.AUTOQ_QUANTIZE_ROWS,
	QuantizeBytes:       C.AUTOQ_QUANTIZE_BYTES,
	QuantizeBatchedRows: C.AUTOQ_QUANTIZE_BATCHED_ROWS,
}

// quantizeKernel is the kernel the dispatch table runs for this call.
func quantizeKernel(m Matrix, s quant.Scheme, q *Buffer) (Kernel, error) {
	l, err := schemeLayout(s, m.Rows, m.Cols)
	if err != nil {
		return "", err
	}
	if m.Buf == nil || q == nil {
		return "", fmt.Errorf("cuda: quantize: no device buffer")
	}
	return firstFit(OpQuantize, 0, func(k Kernel) bool { return quantizeFits(k, m, l, q) })
}

func quantizeFits(k Kernel, m Matrix, l grouping, q *Buffer) bool {
	ck, ok := quantizeKernels[k]
	return ok && C.autoq_quantize_fits(ck, m.Buf.ptr, C.int64_t(m.Rows), C.int64_t(m.Cols), C.int64_t(l.groupCols), (*C.uint8_t)(q.ptr)) != 0
}

// QuantizeDevWith is QuantizeDev with quantize kernel k (an error when k does not fit).
func QuantizeDevWith(k Kernel, m Matrix, s quant.Scheme, scales, zeros, q, nonfinite *Buffer) error {
	const op = "quantize"
	ck, ok := quantizeKernels[k]
	if !ok {
		return fmt.Errorf("cuda: quantize: unknown kernel %q (have %v)", k, Kernels(OpQuantize))
	}
	l, err := m.paramLayout(op, s, scales)
	if err != nil {
		return err
	}
	if err := needZeros(op, s, zeros, l.nParams); err != nil {
		return err
	}
	if err := needBytes(op, q, m.Rows*qRowBytes(s.Bits, m.Cols)); err != nil {
		return err
	}
	if err := needBytes(op, nonfinite, 4); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_quantize(C.int(m.Buf.dev), ck, m.Buf.ptr, C.int(m.DType), C.int64_t(m.Rows), C.int64_t(m.Cols),
			C.int64_t(l.groupCols), b2i(l.perTensor), C.int(s.Bits), b2i(s.Symmetric), (*C.float)(scales.ptr),
			(*C.int32_t)(ptrOrNil(zeros)), (*C.uint8_t)(q.ptr), (*C.int32_t)(nonfinite.ptr), nil)
	})
}

// DequantizeDev turns q (QTensor data layout) back into float32 values in out.
func DequantizeDev(dev int, s quant.Scheme, rows, cols int, q, scales, zeros, out *Buffer) error {
	const op = "dequantize"
	l, err := schemeLayout(s, rows, cols)
	if err != nil {
		return err
	}
	if rows <= 0 || cols <= 0 {
		return fmt.Errorf("cuda: %s: empty matrix %dx%d", op, rows, cols)
	}
	if err := needBytes(op, q, rows*qRowBytes(s.Bits, cols)); err != nil {
		return err
	}
	if err := needBytes(op, scales, 4*l.nParams); err != nil {
		return err
	}
	if err := needZeros(op, s, zeros, l.nParams); err != nil {
		return err
	}
	if err := needBytes(op, out, 4*rows*cols); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_dequantize(C.int(dev), (*C.uint8_t)(q.ptr), C.int64_t(rows), C.int64_t(cols), C.int64_t(l.groupCols),
			b2i(l.perTensor), C.int(s.Bits), b2i(s.Symmetric), (*C.float)(scales.ptr), (*C.int32_t)(ptrOrNil(zeros)),
			(*C.float)(out.ptr), nil)
	})
}

// MSESearchDev runs quant's MSE grid (quant.MSEGridSteps ratios (100-i)/100) per group
// given the group ranges lo/hi; bestIndex (int32) and bestErr (float64) may be nil.
func MSESearchDev(m Matrix, s quant.Scheme, lo, hi, scales, zeros, bestIndex, bestErr *Buffer) error {
	const op = "mse search"
	l, err := m.paramLayout(op, s, lo, hi, scales)
	if err != nil {
		return err
	}
	if err := needZeros(op, s, zeros, l.nParams); err != nil {
		return err
	}
	if err := needIfSet(op, bestIndex, 4*l.nParams); err != nil {
		return err
	}
	if err := needIfSet(op, bestErr, 8*l.nParams); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_mse_search(C.int(m.Buf.dev), m.Buf.ptr, C.int(m.DType), C.int64_t(m.Rows), C.int64_t(m.Cols),
			C.int64_t(l.groupCols), b2i(l.perTensor), C.int(s.Bits), b2i(s.Symmetric), (*C.float)(lo.ptr), (*C.float)(hi.ptr),
			C.int(quant.MSEGridSteps), 100, (*C.float)(scales.ptr), (*C.int32_t)(ptrOrNil(zeros)),
			(*C.int32_t)(ptrOrNil(bestIndex)), (*C.double)(ptrOrNil(bestErr)), nil)
	})
}

// ChannelAbsMaxDev writes max |x| over rows of each column of m (finite values only) into
// absmax (float32 [cols]) and the number of NaN/Inf values into nonfinite (one uint64).
func ChannelAbsMaxDev(m Matrix, absmax, nonfinite *Buffer) error {
	const op = "channel absmax"
	if err := m.check(op); err != nil {
		return err
	}
	if err := needBytes(op, absmax, 4*m.Cols); err != nil {
		return err
	}
	if err := needBytes(op, nonfinite, 8); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_channel_absmax(C.int(m.Buf.dev), m.Buf.ptr, C.int(m.DType), C.int64_t(m.Rows), C.int64_t(m.Cols),
			(*C.float)(absmax.ptr), (*C.uint64_t)(nonfinite.ptr), nil)
	})
}
