package gptq

import "github.com/autoq/autoq/quant"

// gptqRun is the state shared by the row tiles of one Quantize call.
type gptqRun struct {
	s       quant.Scheme
	l       quant.Layout
	w       []float32   // original weights, dead columns zeroed
	u       []float64   // [K, K] upper Cholesky factor of the damped, permuted H^-1
	perm    []int       // perm[p] = original column visited at position p
	invperm []int       // invperm[c] = position of original column c
	bs      int         // block size
	clip    Clip        // range search when a group is reached
	group   []int       // group of each original column (nil when fixed)
	members [][]int     // columns of each group, in the order their values are searched
	blocks  [][]float64 // per group: H restricted to its members (act-mse only)
	fixed   bool        // parameters precomputed (PerTensor, PerChannel)
	levels  []int32     // output, original order
	scales  []float32
	zeros   []int32
}

// tile runs GPTQ on rows [r0, r1). Each row's arithmetic is the same whatever tile it is
// in, so results do not depend on the tiling or the worker count.
func (g *gptqRun) tile(r0, r1 int) {
	k, l, s := g.l.Cols, g.l, g.s
	nt := r1 - r0
	wt := permutedRows(g.w, g.perm, k, r0, nt) // current weights, permuted column order
	errs := make([]float64, nt*g.bs)           // scaled errors (w-q)/U[i,i] of the current block
	reached := make([]bool, l.Groups)
	vals := make([]float32, l.GroupSize)
	scratch := make([]float64, lanes*l.GroupSize) // searchGroup's sixteen candidates at a time
	for i1 := 0; i1 < k; i1 += g.bs {
		i2 := min(i1+g.bs, k)
		for i := i1; i < i2; i++ {
			c := g.perm[i]
			grp := 0
			if !g.fixed {
				grp = g.group[c]
				if !reached[grp] {
					reached[grp] = true
					g.groupParams(wt, errs, r0, nt, grp, i1, i, i2, vals, scratch)
				}
			}
			d := g.u[i*k+i]
			urow := g.u[i*k+i+1 : i*k+i2]
			for t := 0; t < nt; t++ {
				p := l.Param(r0+t, c)
				if !g.fixed {
					p = (r0+t)*l.Groups + grp
				}
				sc, z := g.scales[p], g.zeros[p]
				wv := wt[t*k+i]
				lev := s.QuantizeValue(float32(wv), sc, z)
				g.levels[(r0+t)*k+c] = lev
				e := (wv - float64(quant.DequantizeValue(lev, sc, z))) / d
				errs[t*g.bs+i-i1] = e
				axpy(-e, urow, wt[t*k+i+1:t*k+i2])
			}
		}
		if i2 == k {
			break
		}
		lazyUpdate(wt, errs, g.u, k, g.bs, nt, i1, i2)
	}
}

// permutedRows copies rows r0..r0+nt-1 of w [*, k] into float64 with column perm[p] at p.
func permutedRows(w []float32, perm []int, k, r0, nt int) []float64 {
	wt := make([]float64, nt*k)
	for t := 0; t < nt; t++ {
		src := w[(r0+t)*k : (r0+t+1)*k]
		for p, c := range perm {
			wt[t*k+p] = float64(src[c])
		}
	}
	return wt
}

// lazyUpdate is GPTQ's lazy batch update: every column of the tile's nt rows (wt, [nt, k],
// permuted order) after the block [i1, i2) takes the block's errors (errs, [nt, bs])
// through the rows i1..i2-1 of the Cholesky factor u.
//
// The columns are taken in chunks of lazyChunk: the block's rows of u over one chunk
// (bs x lazyChunk doubles) stay in cache while every row of the tile takes them, instead
// of streaming the whole block of u once per row. Each element still adds the block's
// terms in the order b = 0, 1, ..., so the bits do not depend on the chunking.
func lazyUpdate(wt, errs, u []float64, k, bs, nt, i1, i2 int) {
	for j0 := i2; j0 < k; j0 += lazyChunk {
		j1 := min(j0+lazyChunk, k)
		for t := 0; t < nt; t++ {
			dst := wt[t*k+j0 : t*k+j1]
			for b := 0; b < i2-i1; b++ {
				if e := errs[t*bs+b]; e != 0 {
					axpy(-e, u[(i1+b)*k+j0:(i1+b)*k+j1], dst)
				}
			}
		}
	}
}

// lazyChunk is the column chunk of lazyUpdate: 128 rows of u over 256 columns are 256 KiB.
var lazyChunk = 256

// groupParams chooses the parameters of group grp for the tile's rows when its first
// column is reached at position i of the block [i1, i2). The group's columns are all
// still unquantized; those inside the block are current, those after it still miss the
// pending lazy update from the block's columns i1..i-1, which is applied here on the fly.
func (g *gptqRun) groupParams(wt, errs []float64, r0, nt, grp, i1, i, i2 int, vals []float32, scratch []float64) {
	k, l := g.l.Cols, g.l
	var hg []float64
	if g.blocks != nil {
		hg = g.blocks[grp]
	}
	for t := 0; t < nt; t++ {
		for j, c := range g.members[grp] {
			p := g.invperm[c]
			v := wt[t*k+p]
			if p >= i2 {
				for b := i1; b < i; b++ {
					v -= errs[t*g.bs+b-i1] * g.u[b*k+p]
				}
			}
			vals[j] = float32(v)
		}
		pi := (r0+t)*l.Groups + grp
		g.scales[pi], g.zeros[pi] = searchGroup(g.s, vals, 1, l.GroupSize, hg, g.clip, scratch)
	}
}

// axpy computes y += a*x: quant.Axpy (its AVX2 kernel gives the Go loop's bits), or the
// plain loop (axpyGo) when a benchmark sets it as the baseline.
var axpy = quant.Axpy

// axpyGo is the plain loop axpy replaced.
func axpyGo(a float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// OutputError returns sum over rows of e^T H e with e = w - wq (row-major [rows, cols])
// and H = h.Matrix(): the mean over calibration tokens of ||(W - Wq) x||^2.
func OutputError(w, wq []float32, rows, cols int, h *Hessian) float64 {
	hm := h.Matrix()
	per := make([]float64, rows)
	blocks := (rows + lanes - 1) / lanes
	parallelFor(blocks, func(b int) { // sixteen rows a pass over H: quadForm16's lanes
		r0, r1 := b*lanes, min((b+1)*lanes, rows)
		e := make([]float64, cols*lanes) // rows past the end stay zero: nothing to add
		for r := r0; r < r1; r++ {
			for c := 0; c < cols; c++ {
				e[c*lanes+r-r0] = float64(w[r*cols+c]) - float64(wq[r*cols+c])
			}
		}
		q := quadForm16(hm, e, cols)
		copy(per[r0:r1], q[:r1-r0])
	})
	var s float64
	for _, v := range per {
		s += v
	}
	return s
}
