package gptq

// The blocked kernel behind Hessian.Add: Sum += X^T X over the upper triangle for a batch
// X [m, K] (float32 tokens), accumulated in float64.
//
// Tokens are taken in blocks of hessBlockTokens. A block is converted to float64 and packed
// into panels of hessPanel inputs, token-major ([tokens][4]: the four inputs of one token
// side by side), so that a 4x4 tile of the Hessian is eight running sums read from two
// short contiguous streams. Each entry (i, j) of the block is one float64 dot product over
// the block's tokens in token order, every product rounded before it is added (the
// explicit float64() forbids a fused multiply-add), starting from 0; it is then added to
// Sum[i, j]. Blocks are added in token order.
//
// So for batches of at most hessBlockTokens tokens the result is bit for bit that of one
// dot product per entry over the batch (the loop Add had before this kernel); a longer
// batch is summed as a sum of per-block dot products, which differs only by float64
// rounding. Either way the arithmetic of each entry is fixed by the batch alone:
// workers split the rows of the triangle between them and never share an entry, so the
// result does not depend on GOMAXPROCS.
//
// Cache blocking: a block of 256 tokens makes a panel 8 KiB; hessRowPanels row panels
// (128 KiB, in L2) are multiplied against each column panel (in L1) in turn.
const (
	hessBlockTokens = 256
	hessPanel       = 4
	hessRowPanels   = 16
)

// addBlocked adds x^T x (x is [m, k], finite) into the upper triangle of sum ([k, k]).
func addBlocked(sum []float64, x []float32, m, k int) {
	panels := (k + hessPanel - 1) / hessPanel
	groups := (panels + hessRowPanels - 1) / hessRowPanels
	packed := make([]float64, panels*hessPanel*min(m, hessBlockTokens))
	for t0 := 0; t0 < m; t0 += hessBlockTokens {
		tb := min(hessBlockTokens, m-t0)
		p := packed[:panels*hessPanel*tb]
		packTokens(p, x[t0*k:(t0+tb)*k], tb, k)
		parallelFor(groups, func(g int) {
			addRowGroup(sum, p, tb, k, g*hessRowPanels, min((g+1)*hessRowPanels, panels), panels)
		})
	}
}

// packTokens converts the tb tokens of x ([tb, k]) into panels: panel q is p[q*4*tb:] laid
// out [tb][4] with inputs 4q..4q+3, zero past k.
func packTokens(p []float64, x []float32, tb, k int) {
	clear(p)
	for t := 0; t < tb; t++ {
		row := x[t*k : (t+1)*k]
		for c, v := range row {
			q, r := c/hessPanel, c%hessPanel
			p[q*hessPanel*tb+t*hessPanel+r] = float64(v)
		}
	}
}

// addRowGroup adds the tiles of row panels [q0, q1) against every column panel at or
// right of them.
func addRowGroup(sum, p []float64, tb, k, q0, q1, panels int) {
	size := hessPanel * tb
	var tile [hessPanel][hessPanel]float64
	for qj := q0; qj < panels; qj++ {
		b := p[qj*size : (qj+1)*size]
		for qi := q0; qi < min(q1, qj+1); qi++ {
			a := p[qi*size : (qi+1)*size]
			tile4x4(&tile, a, b)
			for ii := 0; ii < hessPanel; ii++ {
				i := qi*hessPanel + ii
				if i >= k {
					break
				}
				row := sum[i*k : (i+1)*k]
				for jj := 0; jj < hessPanel; jj++ {
					if j := qj*hessPanel + jj; j >= i && j < k {
						row[j] += tile[ii][jj]
					}
				}
			}
		}
	}
}

// tile4x4 sets tile[ii][jj] to the dot product over tokens of input ii of panel a and
// input jj of panel b, in token order. It runs as two passes of eight running sums (four
// rows by two columns), which fit the sixteen float registers with the values they read.
func tile4x4(tile *[hessPanel][hessPanel]float64, a, b []float64) {
	for half := 0; half < hessPanel; half += 2 {
		var c00, c01, c10, c11, c20, c21, c30, c31 float64
		bb := b[half:]
		for t := 0; t+hessPanel <= len(a); t += hessPanel {
			av := a[t : t+4 : t+4]
			bv := bb[t : t+2 : t+2]
			a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
			b0, b1 := bv[0], bv[1]
			c00 += float64(a0 * b0)
			c01 += float64(a0 * b1)
			c10 += float64(a1 * b0)
			c11 += float64(a1 * b1)
			c20 += float64(a2 * b0)
			c21 += float64(a2 * b1)
			c30 += float64(a3 * b0)
			c31 += float64(a3 * b1)
		}
		tile[0][half], tile[0][half+1] = c00, c01
		tile[1][half], tile[1][half+1] = c10, c11
		tile[2][half], tile[2][half+1] = c20, c21
		tile[3][half], tile[3][half+1] = c30, c31
	}
}
