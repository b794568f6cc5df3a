package backend

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// CPUGEMM is the reference GEMM: every method delegates to package quant. As a GEMMTimer it
// times the Go kernels (F32, W8A8 int8, W4A16 int4) with the wall clock.
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

// CPU kernel names, baseline first.
const (
	CPUKernelF32    = "f32"
	CPUKernelW8A8   = "w8a8"
	CPUKernelW8AQ   = "w8a8+aq"
	CPUKernelW4G128 = "w4a16-g128"
)

// Kernels lists the Go kernels, the float32 baseline first.
func (*CPUGEMM) Kernels() []string {
	return []string{CPUKernelF32, CPUKernelW8A8, CPUKernelW8AQ, CPUKernelW4G128}
}

// Notes says how the CPU is timed.
func (*CPUGEMM) Notes() string {
	return "CPU backend (no GPU): pure-Go reference kernels, wall clock per call; weights quantized with quant.Quantize"
}

// Prepare quantizes a random Gaussian weight [N, K] to int8 (per channel) and int4 (g128).
func (c *CPUGEMM) Prepare(K, N, maxM int) error {
	if K < 128 || N < 1 || maxM < 1 || K%128 != 0 {
		return fmt.Errorf("cpu gemm bench: shape K=%d N=%d maxM=%d: need K a multiple of 128, N and M >= 1", K, N, maxM)
	}
	c.k, c.n, c.maxM = K, N, maxM
	c.w = pseudoRandom(N*K, 0.02, 1)
	c.a = pseudoRandom(maxM*K, 1, 2)
	var err error
	c.w8, err = quant.Quantize("bench.w8", c.w, N, K, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{Method: quant.SearchMax})
	if err != nil {
		return err
	}
	c.w4, err = quant.Quantize("bench.w4", c.w, N, K, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, quant.SearchOptions{Method: quant.SearchMax})
	if err != nil {
		return err
	}
	c.aq, c.aScales = quant.QuantizeActivationsPerToken(c.a, maxM, K)
	return nil
}

// pseudoRandom returns n values uniform in [-amp, amp) from a fixed xorshift stream.
func pseudoRandom(n int, amp float32, seed uint64) []float32 {
	out := make([]float32, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = (float32(x>>40)/float32(1<<24)*2 - 1) * amp
	}
	return out
}

// Time runs one Go kernel.
func (c *CPUGEMM) Time(kernel string, M, warmup, iters int) (GEMMTiming, error) {
	if c.w8 == nil {
		return GEMMTiming{}, fmt.Errorf("cpu gemm bench: Prepare was not called")
	}
	if M < 1 || M > c.maxM {
		return GEMMTiming{}, fmt.Errorf("cpu gemm bench: M=%d outside [1, %d]", M, c.maxM)
	}
	K, N := c.k, c.n
	a, aq, as := c.a[:M*K], c.aq[:M*K], c.aScales[:M]
	var run func() error
	var bytes int64
	mk, nk, mn := int64(M*K), int64(N*K), int64(M*N)
	switch kernel {
	case CPUKernelF32:
		run = func() error { _ = quant.GemmF32(a, c.w, M, N, K); return nil }
		bytes = 4 * (mk + nk + mn)
	case CPUKernelW8A8:
		run = func() error { _, err := quant.GemmW8A8(aq, as, M, c.w8, nil); return err }
		bytes = mk + nk + 4*mn + 4*int64(M+N)
	case CPUKernelW8AQ:
		run = func() error {
			q, s := quant.QuantizeActivationsPerToken(a, M, K)
			_, err := quant.GemmW8A8(q, s, M, c.w8, nil)
			return err
		}
		bytes = 4*mk + nk + 4*mn + 4*int64(M+N)
	case CPUKernelW4G128:
		run = func() error { _, err := quant.GemmW4A16(a, M, c.w4, nil); return err }
		bytes = 4*mk + nk/2 + 4*nk/128 + 4*mn
	default:
		return GEMMTiming{}, fmt.Errorf("cpu gemm bench: unknown kernel %q (have %v)", kernel, c.Kernels())
	}
	for i := 0; i < warmup; i++ {
		if err := run(); err != nil {
			return GEMMTiming{}, err
		}
	}
	ms := make([]float64, iters)
	for i := range ms {
		t0 := time.Now()
		if err := run(); err != nil {
			return GEMMTiming{}, err
		}
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	return GEMMTiming{Ms: ms, Bytes: bytes}, nil
}

var (
	_ GEMM      = (*CPUGEMM)(nil)
	_ GEMMTimer = (*CPUGEMM)(nil)
)
