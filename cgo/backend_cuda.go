//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Backend runs autoq's quantization and calibration kernels on one CUDA device. Inputs
// the kernels do not handle (bad shapes or parameters, NaN/Inf, percentile weight search,
// the max calibrator) go to the CPU reference, so errors and results are always the
// reference's.
type Backend struct {
	dev  int
	info backend.DeviceInfo
	cpu  backend.Backend

	mu     sync.Mutex
	plans  map[int]*entropyPlan // by groups (levels+1)
	forced map[Op]Kernel        // the benchmark's UseKernelVariant (PrepareKernel only)
}

var _ backend.Backend = (*Backend)(nil)

// Open opens CUDA device dev, failing for devices older than sm_80.
func Open(dev int) (*Backend, error) {
	n, err := DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("no CUDA device: %v", err)
	}
	if dev < 0 || dev >= n {
		return nil, fmt.Errorf("no CUDA device %d: %d device(s) found", dev, n)
	}
	if err := CheckDevice(dev); err != nil {
		return nil, err
	}
	info, err := DeviceInfo(dev)
	if err != nil {
		return nil, err
	}
	return &Backend{dev: dev, info: info, cpu: backend.NewCPU(), plans: map[int]*entropyPlan{}, forced: map[Op]Kernel{}}, nil
}

// Info describes the device.
func (b *Backend) Info() backend.DeviceInfo { return b.info }

// Device is the CUDA ordinal.
func (b *Backend) Device() int { return b.dev }

// Close frees the cached entropy plans.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.plans {
		p.close()
	}
	b.plans = map[int]*entropyPlan{}
	return nil
}

// weightOK reports whether the GPU path can take w under s (otherwise the CPU reference
// runs and reports the error).
func weightOK(w *tensor.Tensor, s quant.Scheme) (rows, cols int, l grouping, ok bool) {
	if w == nil || len(w.Shape) != 2 || !w.DType.IsFloat() || len(w.Data) != tensor.ByteSize(w.DType, w.Shape) {
		return 0, 0, grouping{}, false
	}
	rows, cols = w.Shape[0], w.Shape[1]
	if rows <= 0 || cols <= 0 {
		return 0, 0, grouping{}, false
	}
	l, err := schemeLayout(s, rows, cols)
	return rows, cols, l, err == nil
}

// upload copies a host tensor's bytes to a new device buffer.
func (b *Backend) upload(data []byte) (*Buffer, error) {
	buf, err := Alloc(b.dev, len(data))
	if err != nil {
		return nil, err
	}
	if err := buf.CopyFromHost(0, data); err != nil {
		buf.Close()
		return nil, err
	}
	return buf, nil
}

// bufs allocates several device buffers, closing all on failure.
func (b *Backend) bufs(sizes ...int) ([]*Buffer, error) {
	out := make([]*Buffer, len(sizes))
	for i, sz := range sizes {
		buf, err := Alloc(b.dev, sz)
		if err != nil {
			freeBuffers(out[:i]...)
			return nil, err
		}
		out[i] = buf
	}
	return out, nil
}

func freeBuffers(bs ...*Buffer) {
	for _, x := range bs {
		if x != nil {
			_ = x.Close()
		}
	}
}

func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func download[T any](buf *Buffer, n int) ([]T, error) {
	out := make([]T, n)
	if n == 0 {
		return out, nil
	}
	var z T
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*int(unsafe.Sizeof(z)))
	return out, buf.CopyToHost(raw, 0)
}

func anyNonZero(v []int32) bool {
	for _, x := range v {
		if x != 0 {
			return true
		}
	}
	return false
}

// ranges runs the group-range kernel on an uploaded weight and returns the device lo/hi
// buffers; bad reports a NaN/Inf somewhere.
func (b *Backend) ranges(m Matrix, s quant.Scheme, l grouping) (lo, hi *Buffer, bad bool, err error) {
	bs, err := b.bufs(4*l.nParams, 4*l.nParams, 4*l.nParams)
	if err != nil {
		return nil, nil, false, err
	}
	defer bs[2].Close()
	if err := GroupRangesDev(m, s, bs[0], bs[1], bs[2]); err != nil {
		freeBuffers(bs[:2]...)
		return nil, nil, false, err
	}
	flags, err := download[int32](bs[2], l.nParams)
	if err != nil {
		freeBuffers(bs[:2]...)
		return nil, nil, false, err
	}
	return bs[0], bs[1], anyNonZero(flags), nil
}

// GroupRanges is quant.GroupRanges on the GPU.
func (b *Backend) GroupRanges(name string, w *tensor.Tensor, s quant.Scheme) ([]float32, []float32, error) {
	rows, cols, l, ok := weightOK(w, s)
	if !ok {
		return b.cpu.GroupRanges(name, w, s)
	}
	wb, err := b.upload(w.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("group ranges of %q: %w", name, err)
	}
	defer wb.Close()
	lo, hi, bad, err := b.ranges(Matrix{Buf: wb, DType: w.DType, Rows: rows, Cols: cols}, s, l)
	if err != nil {
		return nil, nil, fmt.Errorf("group ranges of %q: %w", name, err)
	}
	defer freeBuffers(lo, hi)
	if bad {
		return b.cpu.GroupRanges(name, w, s) // the reference names the first bad element
	}
	los, err := download[float32](lo, l.nParams)
	if err != nil {
		return nil, nil, err
	}
	his, err := download[float32](hi, l.nParams)
	return los, his, err
}

// SearchParams runs the max and mse searches on the GPU; percentile (and other methods)
// on the CPU.
func (b *Backend) SearchParams(name string, w *tensor.Tensor, s quant.Scheme, opt quant.SearchOptions) ([]float32, []int32, error) {
	method := opt.Method
	if method == 0 {
		method = quant.SearchMax
	}
	rows, cols, l, ok := weightOK(w, s)
	if !ok || (method != quant.SearchMax && method != quant.SearchMSE) {
		return b.cpu.SearchParams(name, w, s, opt)
	}
	wb, err := b.upload(w.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("scale search of %q: %w", name, err)
	}
	defer wb.Close()
	m := Matrix{Buf: wb, DType: w.DType, Rows: rows, Cols: cols}
	lo, hi, bad, err := b.ranges(m, s, l)
	if err != nil {
		return nil, nil, fmt.Errorf("scale search of %q: %w", name, err)
	}
	defer freeBuffers(lo, hi)
	if bad {
		return b.cpu.SearchParams(name, w, s, opt)
	}
	out, err := b.bufs(4*l.nParams, 4*l.nParams)
	if err != nil {
		return nil, nil, fmt.Errorf("scale search of %q: %w", name, err)
	}
	defer freeBuffers(out...)
	var zb *Buffer
	if !s.Symmetric {
		zb = out[1]
	}
	if method == quant.SearchMax {
		err = ComputeParamsDev(b.dev, s, lo, hi, l.nParams, out[0], zb)
	} else {
		err = MSESearchDev(m, s, lo, hi, out[0], zb, nil, nil)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("scale search (%v) of %q: %w", method, name, err)
	}
	scales, err := download[float32](out[0], l.nParams)
	if err != nil {
		return nil, nil, err
	}
	if s.Symmetric {
		return scales, nil, nil
	}
	zeros, err := download[int32](zb, l.nParams)
	return scales, zeros, err
}

// paramsOK mirrors quant's parameter checks; anything else goes to the CPU for its error.
func paramsOK(s quant.Scheme, l grouping, scales []float32, zeros []int32) bool {
	if len(scales) != l.nParams {
		return false
	}
	for _, sc := range scales {
		if math.IsNaN(float64(sc)) || math.IsInf(float64(sc), 0) || sc <= 0 {
			return false
		}
	}
	if s.Symmetric {
		return !anyNonZero(zeros)
	}
	if len(zeros) != l.nParams {
		return false
	}
	qlo, qhi := s.QRange()
	for _, z := range zeros {
		if z < qlo || z > qhi {
			return false
		}
	}
	return true
}

// Quantize is quant.QuantizeWithParams on the GPU.
func (b *Backend) Quantize(name string, w *tensor.Tensor, s quant.Scheme, scales []float32, zeros []int32) (*quant.QTensor, error) {
	rows, cols, l, ok := weightOK(w, s)
	if !ok || !paramsOK(s, l, scales, zeros) {
		return b.cpu.Quantize(name, w, s, scales, zeros)
	}
	wb, err := b.upload(w.Data)
	if err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	defer wb.Close()
	sb, err := b.upload(f32Bytes(scales))
	if err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	defer sb.Close()
	var zb *Buffer
	if !s.Symmetric {
		if zb, err = b.upload(i32Bytes(zeros)); err != nil {
			return nil, fmt.Errorf("quantize %q: %w", name, err)
		}
		defer zb.Close()
	}
	nbytes := rows * qRowBytes(s.Bits, cols)
	out, err := b.bufs(nbytes, 4)
	if err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	defer freeBuffers(out...)
	if err := QuantizeDev(Matrix{Buf: wb, DType: w.DType, Rows: rows, Cols: cols}, s, sb, zb, out[0], out[1]); err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	flag, err := download[int32](out[1], 1)
	if err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	if flag[0] != 0 {
		return b.cpu.Quantize(name, w, s, scales, zeros)
	}
	data, err := download[byte](out[0], nbytes)
	if err != nil {
		return nil, fmt.Errorf("quantize %q: %w", name, err)
	}
	q := &quant.QTensor{Name: name, Scheme: s, Rows: rows, Cols: cols, Groups: l.groups, Data: data,
		Scales: append([]float32(nil), scales...)}
	if !s.Symmetric {
		q.Zeros = append([]int32(nil), zeros...)
	}
	return q, nil
}

// Dequantize is quant.Dequantize on the GPU.
func (b *Backend) Dequantize(q *quant.QTensor) (*tensor.Tensor, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.GIdx != nil { // groups in activation order: the kernel takes contiguous groups only
		return tensor.FromF32(quant.Dequantize(q), q.Rows, q.Cols), nil
	}
	db, err := b.upload(q.Data)
	if err != nil {
		return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
	}
	defer db.Close()
	sb, err := b.upload(f32Bytes(q.Scales))
	if err != nil {
		return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
	}
	defer sb.Close()
	var zb *Buffer
	if !q.Scheme.Symmetric {
		if zb, err = b.upload(i32Bytes(q.Zeros)); err != nil {
			return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
		}
		defer zb.Close()
	}
	ob, err := Alloc(b.dev, 4*q.Rows*q.Cols)
	if err != nil {
		return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
	}
	defer ob.Close()
	if err := DequantizeDev(b.dev, q.Scheme, q.Rows, q.Cols, db, sb, zb, ob); err != nil {
		return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
	}
	out, err := download[float32](ob, q.Rows*q.Cols)
	if err != nil {
		return nil, fmt.Errorf("dequantize %q: %w", q.Name, err)
	}
	return tensor.FromF32(out, q.Rows, q.Cols), nil
}
