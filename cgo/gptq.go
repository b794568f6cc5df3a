//go:build cuda

package cgo

// #include "autoq_gptq.h"
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/quant"
)

// HessianAddDev accumulates h += x^T x on the device: x holds m rows of k float32 inputs,
// h a [k, k] float64 matrix (both device buffers). Use it to build a gptq.Hessian from
// activations already on the GPU: download h and add it to Hessian.Sum (upper triangle).
func HessianAddDev(dev int, x *Buffer, m, k int, h *Buffer) error {
	if err := needBytes("gptq hessian: x", x, 4*m*k); err != nil {
		return err
	}
	if err := needBytes("gptq hessian: h", h, 8*k*k); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gptq_hessian_add(C.int(dev), (*C.float)(x.ptr), C.int64_t(m), C.int64_t(k), (*C.double)(h.ptr), nil)
	})
}

// HessianAddF16Dev is HessianAddDev with x in F16 (the model runner's activations: each
// value widens exactly to float64 before the products).
func HessianAddF16Dev(dev int, x *Buffer, m, k int, h *Buffer) error {
	if err := needBytes("gptq hessian: x", x, 2*m*k); err != nil {
		return err
	}
	if err := needBytes("gptq hessian: h", h, 8*k*k); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_gptq_hessian_add_f16(C.int(dev), x.ptr, C.int64_t(m), C.int64_t(k), (*C.double)(h.ptr), nil)
	})
}

// GPTQBlockSize is the block size the GPU uses for a prepared problem: Opt.BlockSize,
// adjusted for PerGroup so that groups never straddle a block boundary (the GPU chooses a
// group's parameters only from columns that are up to date): the largest multiple of the
// group size up to 128, or the largest divisor of the group size up to 128.
func GPTQBlockSize(p *gptq.Problem) int {
	bs := min(p.Opt.BlockSize, 128)
	if p.Scheme.Granularity != quant.PerGroup {
		return bs
	}
	gs := p.GroupSize
	if gs <= bs {
		return gs * (bs / gs)
	}
	for d := bs; d > 1; d-- {
		if gs%d == 0 {
			return d
		}
	}
	return 1
}

var errGPUNotPD = errors.New("gpu factor")

// GPTQQuantize is gptq.Quantize on CUDA device dev: the same preparation (gptq.Prepare),
// the damping retries and RTN fallback (gptq.FactorWith), the factor by cuSOLVER, the
// column loop in our kernel and the lazy updates by cuBLAS DGEMM, all in float64. Natural
// column order only (Options.ActOrder is an error: use the CPU). The block size is
// GPTQBlockSize(p); the CPU with the same block size gives the same levels up to float64
// rounding of the batched updates (see TestGPTQGPUMatchesCPU).
func GPTQQuantize(dev int, name string, w []float32, rows, cols int, s quant.Scheme, h *gptq.Hessian, opt gptq.Options) (*quant.QTensor, gptq.Report, error) {
	rep := gptq.Report{Layer: name}
	p, err := gptq.Prepare(name, w, rows, cols, s, h, opt)
	if err != nil {
		return nil, rep, err
	}
	if p.Opt.ActOrder {
		return nil, rep, fmt.Errorf("%s: act-order GPTQ is not implemented on the GPU; use the CPU", name)
	}
	rep.DeadColumns = p.Dead
	ub, err := Alloc(dev, 8*cols*cols)
	if err != nil {
		return nil, rep, fmt.Errorf("%s: %w", name, err)
	}
	defer ub.Close()
	_, damp, tries, ferr := gptq.FactorWith(p, func(a []float64) ([]float64, error) {
		if err := ub.CopyFromHost(0, f64Bytes(a)); err != nil {
			return nil, err
		}
		var pivot C.int
		err := call(func() C.int {
			return C.autoq_gptq_factor(C.int(dev), (*C.double)(ub.ptr), C.int64_t(cols), &pivot, nil)
		})
		var ce *Error
		if errors.As(err, &ce) && ce.Status == int(C.AUTOQ_ERR_NOT_PD) {
			return nil, fmt.Errorf("%w: %w (%v)", gptq.ErrNotPositiveDefinite, errGPUNotPD, err)
		}
		return nil, err
	})
	rep.Damp, rep.DampRetries = damp, tries
	if ferr != nil {
		if errors.Is(ferr, gptq.ErrNotPositiveDefinite) {
			return p.RTNFallback(rep, ferr)
		}
		return nil, rep, fmt.Errorf("%s: %w", name, ferr)
	}

	nParams := rows * p.Groups
	if p.PerTensor {
		nParams = 1
	}
	bufs := map[string]int{"w": 4 * rows * cols, "levels": 4 * rows * cols, "scales": 4 * nParams, "zeros": 4 * nParams}
	if p.Opt.Clip == gptq.ClipActMSE {
		bufs["hact"] = 8 * cols * cols
	}
	b := make(map[string]*Buffer)
	defer func() {
		for _, x := range b {
			x.Close()
		}
	}()
	for k, n := range bufs {
		if b[k], err = Alloc(dev, n); err != nil {
			return nil, rep, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := b["w"].CopyFromHost(0, f32Bytes(p.W)); err != nil {
		return nil, rep, err
	}
	var hact unsafe.Pointer
	if hb := b["hact"]; hb != nil {
		if err := hb.CopyFromHost(0, f64Bytes(p.H)); err != nil {
			return nil, rep, err
		}
		hact = hb.ptr
	}
	fs, fz := p.FixedParams()
	if fs != nil {
		if fz == nil {
			fz = make([]int32, len(fs))
		}
		if err := b["scales"].CopyFromHost(0, f32Bytes(fs)); err != nil {
			return nil, rep, err
		}
		if err := b["zeros"].CopyFromHost(0, i32Bytes(fz)); err != nil {
			return nil, rep, err
		}
	}
	args := C.autoq_gptq_args{bits: C.int(s.Bits), sym: b2i(s.Symmetric), group_cols: C.int(p.GroupSize),
		per_tensor: b2i(p.PerTensor), fixed_params: b2i(fs != nil), clip: C.int(p.Opt.Clip), block: C.int(GPTQBlockSize(p))}
	var zp *C.int32_t
	if !s.Symmetric {
		zp = (*C.int32_t)(b["zeros"].ptr)
	}
	err = call(func() C.int {
		return C.autoq_gptq_run(C.int(dev), &args, C.int64_t(rows), C.int64_t(cols), (*C.float)(b["w"].ptr),
			(*C.double)(ub.ptr), (*C.double)(hact), (*C.float)(b["scales"].ptr), zp, (*C.int32_t)(b["levels"].ptr), nil)
	})
	if err != nil {
		return nil, rep, fmt.Errorf("%s: %w", name, err)
	}
	levels := make([]int32, rows*cols)
	scales := make([]float32, nParams)
	zeros := make([]int32, nParams)
	if err := b["levels"].CopyToHost(i32Bytes(levels), 0); err != nil {
		return nil, rep, err
	}
	if err := b["scales"].CopyToHost(f32Bytes(scales), 0); err != nil {
		return nil, rep, err
	}
	if !s.Symmetric {
		if err := b["zeros"].CopyToHost(i32Bytes(zeros), 0); err != nil {
			return nil, rep, err
		}
	}
	q, err := quant.NewQTensor(name, s, rows, cols, levels, scales, zeros)
	return q, rep, err
}

func f64Bytes(v []float64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
}
