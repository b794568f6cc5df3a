package backend

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/quant"
)

// CPU kernel names, baseline first.
const (
	CPUKernelF32    = "f32"
	CPUKernelW8A8   = "w8a8"
	CPUKernelW8AQ   = "w8a8+aq"
	CPUKernelW4G128 = "w4a16-g128"
)

// Kernels lists the Go kernels, the float32 baseline first.
func (*CPUGEMM) Kernels() []GEMMKernel {
	return []GEMMKernel{
		{Name: CPUKernelF32, Op: GEMMFloat, FloatBytes: 4},
		{Name: CPUKernelW8A8, Op: GEMMW8A8, FloatBytes: 4},
		{Name: CPUKernelW8AQ, Op: GEMMW8A8AQ, FloatBytes: 4},
		{Name: CPUKernelW4G128, Op: GEMMW4A16G128, FloatBytes: 4},
	}
}

// Notes says how the CPU is timed.
func (*CPUGEMM) Notes() string {
	return "CPU backend (no GPU): pure-Go reference kernels, wall clock per call; weights quantized with quant.Quantize"
}

// CacheBytes is 0: the CPU kernels run on one copy of the weights.
func (*CPUGEMM) CacheBytes() int { return 0 }

// FreeBytes is 0: not limited.
func (*CPUGEMM) FreeBytes() (uint64, error) { return 0, nil }

// Prepare quantizes a random Gaussian weight [N, K] to int8 (per channel) and int4 (g128);
// one copy of each (copies is not consulted: there is no cache to defeat).
func (c *CPUGEMM) Prepare(K, N, maxM int, _ func(int) int) error {
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

// Launch runs one Go kernel at M tokens (synchronously).
func (c *CPUGEMM) Launch(kernel string, M, _ int) error {
	if c.w8 == nil {
		return fmt.Errorf("cpu gemm bench: Prepare was not called")
	}
	if M < 1 || M > c.maxM {
		return fmt.Errorf("cpu gemm bench: M=%d outside [1, %d]", M, c.maxM)
	}
	K, N := c.k, c.n
	a, aq, as := c.a[:M*K], c.aq[:M*K], c.aScales[:M]
	switch kernel {
	case CPUKernelF32:
		_ = quant.GemmF32(a, c.w, M, N, K)
		return nil
	case CPUKernelW8A8:
		_, err := quant.GemmW8A8(aq, as, M, c.w8, nil)
		return err
	case CPUKernelW8AQ:
		q, s := quant.QuantizeActivationsPerToken(a, M, K)
		_, err := quant.GemmW8A8(q, s, M, c.w8, nil)
		return err
	case CPUKernelW4G128:
		_, err := quant.GemmW4A16(a, M, c.w4, nil)
		return err
	}
	return fmt.Errorf("cpu gemm bench: unknown kernel %q", kernel)
}

// TimeEach times each call with the wall clock (holdNs is for devices with a queue).
func (*CPUGEMM) TimeEach(n int, _ int64, f func(i int) error) ([]float64, error) {
	ms := make([]float64, n)
	for i := range ms {
		t0 := time.Now()
		if err := f(i); err != nil {
			return nil, err
		}
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	return ms, nil
}

var _ GEMMTimer = (*CPUGEMM)(nil)
