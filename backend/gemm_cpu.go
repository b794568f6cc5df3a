package backend

import (
	"fmt"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// CPUGEMM is the reference GEMM: every method delegates to package quant. As a GEMMTimer
// (gemm_cpu_timer.go) it times the Go kernels (F32, W8A8 int8, W4A16 int4) with the wall
// clock.
type CPUGEMM struct {
	k, n, maxM int
	a          []float32 // [maxM, K]
	w          []float32 // [N, K]
	aq         []int8
	aScales    []float32
	w8, w4     *quant.QTensor
}

// NewCPUGEMM returns the reference GEMM.
func NewCPUGEMM() *CPUGEMM { return &CPUGEMM{} }

// Info describes the host.
func (*CPUGEMM) Info() DeviceInfo { return CPU{}.Info() }

// Close releases the benchmark inputs.
func (c *CPUGEMM) Close() error { *c = CPUGEMM{}; return nil }

func checkAct(op string, n, M, K int, dt tensor.DType) error {
	if M < 1 || K < 1 || n != M*K {
		return fmt.Errorf("%s: %d values for %d tokens x %d inputs", op, n, M, K)
	}
	if dt != tensor.F16 && dt != tensor.BF16 {
		return fmt.Errorf("%s: activation dtype %s: want F16 or BF16", op, dt)
	}
	return nil
}

// QuantizeActivationsPerToken is quant.QuantizeActivationsPerToken.
func (*CPUGEMM) QuantizeActivationsPerToken(x []float32, M, K int, dt tensor.DType) ([]int8, []float32, error) {
	if err := checkAct("quantize activations", len(x), M, K, dt); err != nil {
		return nil, nil, err
	}
	q, s := quant.QuantizeActivationsPerToken(x, M, K)
	return q, s, nil
}

// QuantizeActivationsStatic is quant.QuantizeActivationsStatic.
func (*CPUGEMM) QuantizeActivationsStatic(x []float32, M, K int, dt tensor.DType, amax float32) ([]int8, float32, error) {
	if err := checkAct("quantize activations", len(x), M, K, dt); err != nil {
		return nil, 0, err
	}
	q, s := quant.QuantizeActivationsStatic(x, amax)
	return q, s, nil
}

// Int8Levels returns the levels of an 8-bit symmetric QTensor as int8 (its stored bytes).
func Int8Levels(w *quant.QTensor) ([]int8, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if w.Scheme.Bits != 8 || !w.Scheme.Symmetric {
		return nil, fmt.Errorf("tensor %q: scheme %s: int8 GEMM needs 8-bit symmetric weights", w.Name, w.Scheme)
	}
	out := make([]int8, len(w.Data))
	for i, b := range w.Data {
		out[i] = int8(b)
	}
	return out, nil
}

// GemmI8 is quant.GemmI8 on w's levels.
func (*CPUGEMM) GemmI8(aq []int8, M int, w *quant.QTensor) ([]int32, error) {
	lv, err := Int8Levels(w)
	if err != nil {
		return nil, fmt.Errorf("gemm i8: %w", err)
	}
	if M < 1 || len(aq) != M*w.Cols {
		return nil, fmt.Errorf("gemm i8: tensor %q: %d activations for %d tokens x %d inputs", w.Name, len(aq), M, w.Cols)
	}
	return quant.GemmI8(aq, lv, M, w.Rows, w.Cols), nil
}

// GemmW8A8 is quant.GemmW8A8.
func (*CPUGEMM) GemmW8A8(aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	return quant.GemmW8A8(aq, aScales, M, w, bias)
}

// GemmW4A16 is quant.GemmW4A16.
func (*CPUGEMM) GemmW4A16(a []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	return quant.GemmW4A16(a, M, w, bias)
}

// GemmF16 is quant.GemmF32 (the CPU computes the float baseline in float32).
func (*CPUGEMM) GemmF16(a []float32, M int, w []float32, N, K int) ([]float32, error) {
	if M < 1 || N < 1 || K < 1 || len(a) != M*K || len(w) != N*K {
		return nil, fmt.Errorf("gemm f32: %d activations and %d weights for M=%d N=%d K=%d", len(a), len(w), M, N, K)
	}
	return quant.GemmF32(a, w, M, N, K), nil
}

var _ GEMM = (*CPUGEMM)(nil)
