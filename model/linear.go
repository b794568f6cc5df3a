package model

import "fmt"

// Linear is a linear layer y = x W^T (+ b) over M rows: x is [M, in], out is [M, out],
// both row-major. Implementations must be safe to call from one goroutine at a time and
// may parallelise internally. Each output row must depend on its input row alone (the
// model runs a batch's rows in chunks where it saves memory, see workspace).
type Linear interface {
	Forward(x []float32, M int, out []float32)
	// Dims returns (out, in): the weight matrix's rows and columns.
	Dims() (out, in int)
}

// Dense is a full-precision linear layer. W is [N, K] row-major ([out, in], as stored in
// checkpoints); Bias is nil or has N entries. A Dense of a lazy model over a BF16 or F16
// checkpoint keeps the checkpoint's 16-bit values instead, and a FakeQuant its quantized
// weight (W nil; see half.go): the product converts their rows exactly as it packs them,
// so the bits are those of the float32 weights. Weights gives them as float32 either way.
type Dense struct {
	W    []float32
	Bias []float32
	N, K int
	src  rowSource // the weights when W is nil
}

// Weights returns the float32 weights [N, K]: W itself, or a converted copy.
func (d *Dense) Weights() []float32 {
	if d.W == nil && d.src != nil {
		return d.src.rows(0, d.N, d.K, make([]float32, d.N*d.K))
	}
	return d.W
}

// weightRows is where the product reads the weight rows from.
func (d *Dense) weightRows() rowSource {
	if d.W == nil && d.src != nil {
		return d.src
	}
	return f32Rows(d.W)
}

// NewDense checks the sizes and returns the layer (w and bias are used, not copied).
func NewDense(w, bias []float32, n, k int) (*Dense, error) {
	if n <= 0 || k <= 0 || len(w) != n*k {
		return nil, fmt.Errorf("dense linear: %d weights for shape [%d, %d]", len(w), n, k)
	}
	if bias != nil && len(bias) != n {
		return nil, fmt.Errorf("dense linear: bias has %d entries, want %d", len(bias), n)
	}
	return &Dense{W: w, Bias: bias, N: n, K: k}, nil
}

// Dims returns (N, K).
func (d *Dense) Dims() (int, int) { return d.N, d.K }

// Forward computes out = x W^T + b. Each output is one float32 sum over k in increasing
// order, each product rounded before it is added (the float32 conversions forbid fused
// multiply-adds), so the result is the same for any tiling, goroutine count or CPU.
func (d *Dense) Forward(x []float32, M int, out []float32) {
	matmulTRows(out, x, d.weightRows(), M, d.N, d.K)
	if d.Bias != nil {
		for m := 0; m < M; m++ {
			row := out[m*d.N : (m+1)*d.N]
			for n, b := range d.Bias {
				row[n] += b
			}
		}
	}
}

const tileM, tileN = 32, 32

// matmulT computes out[M,N] = x[M,K] * w[N,K]^T: on the packed AVX2 kernel where it
// applies (matmul_simd.go), else matmulScalar; both give the same bits.
func matmulT(out, x, w []float32, M, N, K int) {
	matmulTRows(out, x, f32Rows(w), M, N, K)
}

// matmulTRows is matmulT with the weight rows from src (see rowSource).
func matmulTRows(out, x []float32, src rowSource, M, N, K int) {
	if usePacked(M, N, K) {
		matmulPackedRows(out, x, src, M, N, K)
		return
	}
	matmulScalarRows(out, x, src, M, N, K)
}

// matmulScalar is matmulT in Go, parallel over 32x32 output tiles.
func matmulScalar(out, x, w []float32, M, N, K int) {
	matmulScalarRows(out, x, f32Rows(w), M, N, K)
}

// matmulScalarRows is matmulScalar with the weight rows from src.
func matmulScalarRows(out, x []float32, src rowSource, M, N, K int) {
	mt := (M + tileM - 1) / tileM
	nt := (N + tileN - 1) / tileN
	parallelFor(mt*nt, func(lo, hi int) {
		var scratch []float32
		if _, direct := src.(f32Rows); !direct {
			scratch = make([]float32, tileN*K)
		}
		for t := lo; t < hi; t++ {
			m0, n0 := (t/nt)*tileM, (t%nt)*tileN
			m1, n1 := min(m0+tileM, M), min(n0+tileN, N)
			matmulTile(out, x, src.rows(n0, n1, K, scratch), m0, m1, n0, n1, N, K)
		}
	})
}

// matmulTile fills out[m0:m1, n0:n1] from the weight rows n0..n1 (w, [n1-n0, K]), four x
// rows per pass over a w row so that each w element is loaded once per four products and
// the four sums are independent.
func matmulTile(out, x, w []float32, m0, m1, n0, n1, N, K int) {
	for n := n0; n < n1; n++ {
		wr := w[(n-n0)*K : (n-n0+1)*K]
		m := m0
		for ; m+4 <= m1; m += 4 {
			x0 := x[m*K : (m+1)*K]
			x1 := x[(m+1)*K : (m+2)*K]
			x2 := x[(m+2)*K : (m+3)*K]
			x3 := x[(m+3)*K : (m+4)*K]
			var s0, s1, s2, s3 float32
			for k, wv := range wr {
				s0 += float32(x0[k] * wv)
				s1 += float32(x1[k] * wv)
				s2 += float32(x2[k] * wv)
				s3 += float32(x3[k] * wv)
			}
			out[m*N+n], out[(m+1)*N+n], out[(m+2)*N+n], out[(m+3)*N+n] = s0, s1, s2, s3
		}
		for ; m < m1; m++ {
			xr := x[m*K : (m+1)*K]
			var s float32
			for k, wv := range wr {
				s += float32(xr[k] * wv)
			}
			out[m*N+n] = s
		}
	}
}
