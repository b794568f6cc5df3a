package rotate

import "github.com/autoq/autoq/quant"

// rowsPass sets each row w_r of w [rows, cols] to (w_r ⊙ g)·Q in float64, rounding once to
// float32; g may be nil, and so may q (scaling only). A q smaller than cols acts on each of
// its blocks (one per head).
func rowsPass(w []float32, rows, cols int, g []float32, q *Orthogonal) {
	parallelChunks(rows, 16, func(lo, hi int) {
		buf := make([]float64, cols)
		var tmp []float64
		if q != nil {
			tmp = make([]float64, q.n)
		}
		for r := lo; r < hi; r++ {
			row := w[r*cols : (r+1)*cols]
			for i, v := range row {
				buf[i] = float64(v)
				if g != nil {
					buf[i] *= float64(g[i])
				}
			}
			if q != nil {
				for b := 0; b < cols; b += q.n {
					q.mulRow(buf[b:b+q.n], tmp)
				}
			}
			for i, v := range buf {
				row[i] = float32(v)
			}
		}
	})
}

// colsChunk is the number of columns colsPass gathers at once.
const colsChunk = 16

// colsPass sets w [rows, cols] to Qᵀ·w: every column, as a row vector, times Q (block-wise
// when q is smaller than rows). Columns are gathered colsChunk at a time into float64.
func colsPass(w []float32, rows, cols int, q *Orthogonal) {
	parallelChunks(cols, colsChunk, func(lo, hi int) {
		n := hi - lo
		buf := make([]float64, n*rows) // column c-lo at buf[(c-lo)*rows:]
		tmp := make([]float64, q.n)
		for r := 0; r < rows; r++ {
			for c := lo; c < hi; c++ {
				buf[(c-lo)*rows+r] = float64(w[r*cols+c])
			}
		}
		for j := 0; j < n; j++ {
			col := buf[j*rows : (j+1)*rows]
			for b := 0; b < rows; b += q.n {
				q.mulRow(col[b:b+q.n], tmp)
			}
		}
		for r := 0; r < rows; r++ {
			for c := lo; c < hi; c++ {
				w[r*cols+c] = float32(buf[(c-lo)*rows+r])
			}
		}
	})
}

// parallelChunks is quant.ParallelChunks for work that cannot fail: each index is computed
// by one call independently of the others, so the result does not depend on scheduling.
func parallelChunks(n, chunk int, fn func(lo, hi int)) {
	quant.ParallelChunks(n, chunk, func(lo, hi int) error { fn(lo, hi); return nil })
}
