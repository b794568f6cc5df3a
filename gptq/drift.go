package gptq

import (
	"fmt"
	"math"
)

// Drift accumulates D = sum over tokens of (x_ref - x) x^T for one linear layer: x is the
// layer's input as the already-quantized layers before it produce it, x_ref the input the
// full-precision model gives for the same token. With H = sum x x^T (Hessian of the same
// x), FPTarget turns it into the weights whose output on x best matches the full-precision
// layer's output on x_ref. Sums are float64 in token order: deterministic.
type Drift struct {
	K      int
	Tokens int64
	Sum    []float64 // [K, K] row-major (not symmetric)
}

// NewDrift returns an empty accumulator for K inputs.
func NewDrift(k int) (*Drift, error) {
	if k <= 0 {
		return nil, fmt.Errorf("drift: input width must be positive, got %d", k)
	}
	return &Drift{K: k, Sum: make([]float64, k*k)}, nil
}

// Add accumulates M token pairs: ref and x are [M, K] row-major, row t of both the same
// token. NaN or Inf inputs are an error and leave the accumulator unchanged.
func (d *Drift) Add(ref, x []float32, m, k int) error {
	if k != d.K {
		return fmt.Errorf("drift: input width %d, accumulator has %d", k, d.K)
	}
	if m < 0 || len(x) != m*k || len(ref) != m*k {
		return fmt.Errorf("drift: %d and %d values for %d tokens of width %d", len(ref), len(x), m, k)
	}
	e := make([]float64, m*k)
	xv := make([]float64, m*k)
	for i := range x {
		if !isFinite32(x[i]) || !isFinite32(ref[i]) {
			return fmt.Errorf("drift: non-finite input at token %d, input %d", i/k, i%k)
		}
		e[i] = float64(ref[i]) - float64(x[i])
		xv[i] = float64(x[i])
	}
	parallelFor(k, func(i int) {
		row := d.Sum[i*k : (i+1)*k]
		for t := 0; t < m; t++ {
			if a := e[t*k+i]; a != 0 {
				for j, v := range xv[t*k : (t+1)*k] {
					row[j] += a * v
				}
			}
		}
	})
	d.Tokens += int64(m)
	return nil
}

// FPTarget returns the weights W' = W + W·D·(H + damp·mean(diag H)·I)^-1 ([rows, cols]
// row-major, float32), D and H per token. Undamped, W' is the least-squares solution of
// min sum_t ||W' x_t - W x_ref_t||²; then for any W_q, sum_t ||W_q x_t - W x_ref_t||² =
// sum_t ||(W_q - W') x_t||² + const, so GPTQ of W' against H minimizes the error against
// the full-precision output (the asymmetric calibration of GPTAQ) rather than against
// W x_t. Without drift (x = x_ref) W' = W exactly, whatever the damping. damp 0 means
// DefaultDamp; inputs with diag H = 0 are treated as in Prepare (H_ii = 1).
func FPTarget(name string, w []float32, rows, cols int, h *Hessian, d *Drift, damp float64) ([]float32, error) {
	if h == nil || d == nil || h.K != cols || d.K != cols || len(w) != rows*cols {
		return nil, fmt.Errorf("%s: FPTarget needs a %dx%d weight, its Hessian and drift of width %d", name, rows, cols, cols)
	}
	if h.Tokens != d.Tokens || h.Tokens == 0 {
		return nil, fmt.Errorf("%s: Hessian (%d tokens) and drift (%d tokens) must cover the same tokens", name, h.Tokens, d.Tokens)
	}
	if damp == 0 {
		damp = DefaultDamp
	}
	a := h.Matrix()
	var mean float64
	for i := 0; i < cols; i++ {
		if a[i*cols+i] == 0 {
			a[i*cols+i] = 1
		}
		mean += a[i*cols+i]
	}
	mean /= float64(cols)
	for i := 0; i < cols; i++ {
		a[i*cols+i] += damp * mean
	}
	l, err := cholesky(a, cols)
	if err != nil {
		return nil, fmt.Errorf("%s: FPTarget: %w", name, err)
	}
	inv := 1 / float64(d.Tokens)
	out := make([]float32, len(w))
	bad := make([]bool, rows)
	parallelFor(rows, func(r int) {
		wr := w[r*cols : (r+1)*cols]
		z := make([]float64, cols) // W_r·D, then solved in place: z A = W_r D
		for i, wv := range wr {
			if wv == 0 {
				continue
			}
			f := float64(wv) * inv
			for j, v := range d.Sum[i*cols : (i+1)*cols] {
				z[j] += f * v
			}
		}
		// A = L Lᵀ: solve L y = z, then Lᵀ u = y.
		for i := 0; i < cols; i++ {
			z[i] = (z[i] - dot(l[i*cols:i*cols+i], z[:i])) / l[i*cols+i]
		}
		for i := cols - 1; i >= 0; i-- {
			s := z[i]
			for j := i + 1; j < cols; j++ {
				s -= l[j*cols+i] * z[j]
			}
			z[i] = s / l[i*cols+i]
		}
		for c, wv := range wr {
			v := float64(wv) + z[c]
			bad[r] = bad[r] || math.IsNaN(v) || math.IsInf(v, 0)
			out[r*cols+c] = float32(v)
		}
	})
	for r, b := range bad {
		if b {
			return nil, fmt.Errorf("%s: FPTarget gave a non-finite weight in row %d", name, r)
		}
	}
	return out, nil
}
