package gptq

import (
	"fmt"
	"runtime"
	"sync"
)

// Hessian accumulates H = sum over tokens of x x^T for one linear layer's inputs x (length
// K), in float64. Only the upper triangle (i <= j) is accumulated; Matrix mirrors it.
//
// Add is deterministic: the same batches in the same order give the same bits, whatever
// GOMAXPROCS (the summation order is fixed in hessian_kernel.go). Merge adds
// another shard's sums element by element; float64 sums merged in a different grouping
// differ from a single stream only by rounding (a few ulps of the sum), exactly like the
// histogram shards of package calib, and Merge itself is commutative bit for bit
// (a+b == b+a in IEEE arithmetic).
type Hessian struct {
	K      int
	Tokens int64     // number of input vectors accumulated
	Sum    []float64 // [K, K] row-major; entries below the diagonal are unused (zero)
}

// NewHessian returns an empty accumulator for K inputs.
func NewHessian(k int) (*Hessian, error) {
	if k <= 0 {
		return nil, fmt.Errorf("hessian: input width must be positive, got %d", k)
	}
	return &Hessian{K: k, Sum: make([]float64, k*k)}, nil
}

// Add accumulates M input vectors x ([M, K] row-major, one token a row). NaN or Inf inputs
// are an error and leave the accumulator unchanged.
func (h *Hessian) Add(x []float32, m, k int) error {
	if k != h.K {
		return fmt.Errorf("hessian: input width %d, accumulator has %d", k, h.K)
	}
	if m < 0 || len(x) != m*k {
		return fmt.Errorf("hessian: %d values for %d tokens of width %d", len(x), m, k)
	}
	if m == 0 {
		return nil
	}
	for t := 0; t < m; t++ {
		for i, v := range x[t*k : (t+1)*k] {
			if !isFinite32(v) {
				return fmt.Errorf("hessian: non-finite input %v at token %d, input %d", v, t, i)
			}
		}
	}
	// A blocked float64 kernel: each entry is a dot product per block of 256 tokens, in
	// token order, added to Sum block by block (see hessian_kernel.go for the exact order).
	addBlocked(h.Sum, x, m, k)
	h.Tokens += int64(m)
	return nil
}

// Merge adds another shard's accumulation (same K) into h.
func (h *Hessian) Merge(o *Hessian) error {
	if o.K != h.K {
		return fmt.Errorf("hessian: cannot merge width %d into width %d", o.K, h.K)
	}
	for i := range h.Sum {
		h.Sum[i] += o.Sum[i]
	}
	h.Tokens += o.Tokens
	return nil
}

// Matrix returns the full symmetric mean second moment H / Tokens ([K, K], float64). The
// scale does not change GPTQ or act-mse decisions; dividing keeps magnitudes moderate.
// With no tokens the result is all zeros.
func (h *Hessian) Matrix() []float64 {
	k := h.K
	out := make([]float64, k*k)
	inv := 0.0
	if h.Tokens > 0 {
		inv = 1 / float64(h.Tokens)
	}
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			v := h.Sum[i*k+j] * inv
			out[i*k+j] = v
			out[j*k+i] = v
		}
	}
	return out
}

// FromMatrix builds a Hessian from a full symmetric [K, K] matrix taken as the sum over
// tokens tokens (tests and synthetic benchmarks). Only the upper triangle is read.
func FromMatrix(k int, tokens int64, m []float64) (*Hessian, error) {
	if len(m) != k*k {
		return nil, fmt.Errorf("hessian: %d values for a %dx%d matrix", len(m), k, k)
	}
	h, err := NewHessian(k)
	if err != nil {
		return nil, err
	}
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			h.Sum[i*k+j] = m[i*k+j]
		}
	}
	h.Tokens = tokens
	return h, nil
}

// isFinite32 reports whether v is neither NaN nor ±Inf.
func isFinite32(v float32) bool { return v-v == 0 }

// parallelFor runs f(0..n-1) on up to GOMAXPROCS goroutines, interleaving indices so
// that triangular workloads balance.
func parallelFor(n int, f func(i int)) {
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += w {
				f(i)
			}
		}(g)
	}
	wg.Wait()
}
