package model

// The packed matmul: the same sums as matmulTile, 64 at a time. The weight rows of a
// 16-wide output panel are packed k-major (panel[k*16+j] = w[n0+j, k]) so that one vector
// load gives the 16 weights every x[m, k] meets; each vector lane is one output's running
// sum, a rounded product added per k in increasing order, which is matmulTile's arithmetic
// (and so its bits) for any tiling. Work is split into units of unitM rows x unitN columns,
// enumerated column-panel first so that a worker packs each panel once for its run of units.

const (
	panelN = 16 // outputs per kernel call (two YMM registers a row)
	unitM  = 64 // rows per work unit (a multiple of 4)
	unitN  = 32 // columns per work unit (a multiple of panelN)
)

// usePacked reports whether matmulT takes the packed path for this shape: the kernel is
// there and the problem is large enough for packing to pay.
func usePacked(M, N, K int) bool { return hasGemmKernel && M >= 4 && N >= panelN && K > 0 }

// matmulPacked is matmulT on the AVX2 kernel.
func matmulPacked(out, x, w []float32, M, N, K int) {
	matmulPackedRows(out, x, f32Rows(w), M, N, K)
}

// matmulPackedRows is matmulPacked with the weight rows from src (float32, or 16-bit
// values converted to float32 as they are packed: the same float32 weights enter the same
// kernel, so the bits are those of the float32 matrix).
func matmulPackedRows(out, x []float32, src rowSource, M, N, K int) {
	mu := (M + unitM - 1) / unitM
	nu := (N + unitN - 1) / unitN
	parallelFor(mu*nu, func(lo, hi int) {
		pack := make([]float32, unitN*K)
		var scratch []float32
		if _, direct := src.(f32Rows); !direct {
			scratch = make([]float32, unitN*K)
		}
		var tmp [4 * panelN]float32
		var w []float32 // rows n0..n1 of the weights
		packed := -1
		for t := lo; t < hi; t++ {
			nb, mb := t/mu, t%mu
			n0, m0 := nb*unitN, mb*unitM
			n1, m1 := min(n0+unitN, N), min(m0+unitM, M)
			if packed != nb {
				w = src.rows(n0, n1, K, scratch)
				packPanels(pack, w, n0, n1, K)
				packed = nb
			}
			m := m0
			for ; m+4 <= m1; m += 4 {
				for p := n0; p < n1; p += panelN {
					panel := pack[(p-n0)*K : (p-n0+panelN)*K]
					if p+panelN <= N {
						gemm4x16AVX2(&out[m*N+p], N, &x[m*K], K, &panel[0], K)
						continue
					}
					gemm4x16AVX2(&tmp[0], panelN, &x[m*K], K, &panel[0], K)
					for r := 0; r < 4; r++ {
						copy(out[(m+r)*N+p:(m+r)*N+N], tmp[r*panelN:])
					}
				}
			}
			if m < m1 { // the last rows of the matrix: fewer than four
				matmulTile(out, x, w, m, m1, n0, n1, N, K)
			}
		}
	})
}

// packPanels packs output columns n0..n1 of the weights (w: their rows n0..n1, [n1-n0, K]
// row-major) into pack as consecutive 16-wide k-major panels, zero-padding a last partial
// panel.
func packPanels(pack, w []float32, n0, n1, K int) {
	for p := n0; p < n1; p += panelN {
		panel := pack[(p-n0)*K : (p-n0+panelN)*K]
		for j := 0; j < panelN; j++ {
			if p+j >= n1 {
				for k := 0; k < K; k++ {
					panel[k*panelN+j] = 0
				}
				continue
			}
			row := w[(p+j-n0)*K : (p+j-n0+1)*K]
			for k, v := range row {
				panel[k*panelN+j] = v
			}
		}
	}
}
