//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// QuantJob is one tensor of a batched quantization: its weight, parameters (quant's layout,
// as QuantizeDev takes them; Zeros nil when symmetric) and level buffer.
type QuantJob struct {
	M             Matrix
	Scales, Zeros *Buffer
	Q             *Buffer
}

// QuantizeBatchDev quantizes every job with scheme s in one launch of the batched-rows kernel
// per 32 jobs (quantize_batched.cu; the same bits as QuantizeDev). The jobs share one dtype;
// nonfinite (int32 per job) is set to 1 for the jobs whose weight held a NaN or Inf.
func QuantizeBatchDev(jobs []QuantJob, s quant.Scheme, nonfinite *Buffer) error {
	const op = "quantize batch"
	if len(jobs) == 0 {
		return nil
	}
	if err := needBytes(op, nonfinite, 4*len(jobs)); err != nil {
		return err
	}
	dt := jobs[0].M.DType
	cj := make([]C.autoq_quant_job, len(jobs))
	for i, j := range jobs {
		if err := j.M.check(op); err != nil {
			return fmt.Errorf("%w (job %d)", err, i)
		}
		if j.M.DType != dt || j.M.Buf.dev != nonfinite.dev {
			return fmt.Errorf("cuda: %s: job %d is %s on device %d, job 0 %s on device %d: one dtype and device per batch", op, i, j.M.DType, j.M.Buf.dev, dt, nonfinite.dev)
		}
		l, err := schemeLayout(s, j.M.Rows, j.M.Cols)
		if err != nil {
			return fmt.Errorf("cuda: %s: job %d: %w", op, i, err)
		}
		if err := needBytes(op, j.Scales, 4*l.nParams); err != nil {
			return err
		}
		if !s.Symmetric {
			if err := needBytes(op, j.Zeros, 4*l.nParams); err != nil {
				return err
			}
		}
		if err := needBytes(op, j.Q, j.M.Rows*qRowBytes(s.Bits, j.M.Cols)); err != nil {
			return err
		}
		cj[i] = C.autoq_quant_job{w: j.M.Buf.ptr, q: (*C.uint8_t)(j.Q.ptr), scales: (*C.float)(j.Scales.ptr),
			zeros: (*C.int32_t)(ptrOrNil(j.Zeros)), rows: C.int64_t(j.M.Rows), cols: C.int64_t(j.M.Cols),
			group_cols: C.int64_t(l.groupCols), per_tensor: C.int32_t(b2i(l.perTensor))}
	}
	return call(func() C.int {
		return C.autoq_quantize_batch(C.int(nonfinite.dev), &cj[0], C.int(len(cj)), C.int(dt), C.int(s.Bits),
			b2i(s.Symmetric), (*C.int32_t)(nonfinite.ptr), nil)
	})
}
