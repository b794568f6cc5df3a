package gptq

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// Grid is a fixed quantization grid chosen before rounding (a llama.cpp k-quant's
// super-block and sub-block scales, say): Round returns the level of element (row, col)
// nearest to x and the value that level stands for.
type Grid interface {
	Round(row, col int, x float32) (level int32, value float32)
}

// perChannel is the scheme Prepare is given for a fixed grid: it only shapes the layout
// (one group per row); the grid's own parameters are never searched.
var perChannel = quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}

// QuantizeOnGrid is GPTQ onto a fixed grid: the same error compensation as Quantize
// (columns visited in natural or act order, each rounding error spread over the columns
// not yet rounded with the upper Cholesky factor of the damped H^-1, lazily in blocks),
// but every weight is rounded with grid.Round instead of its group's searched parameters.
// It returns the levels and their values ([rows, cols], original column order). Opt.Clip
// is not used (the grid is given). A layer whose Cholesky fails at every damping is
// rounded to nearest on the grid (rep.Fallback).
func QuantizeOnGrid(name string, w []float32, rows, cols int, grid Grid, h *Hessian, opt Options) ([]int32, []float32, Report, error) {
	rep := Report{Layer: name}
	if grid == nil {
		return nil, nil, rep, fmt.Errorf("%s: no grid", name)
	}
	opt.Clip = ClipNone
	p, err := Prepare(name, w, rows, cols, perChannel, h, opt)
	if err != nil {
		return nil, nil, rep, err
	}
	rep.DeadColumns = p.Dead
	levels, values := make([]int32, rows*cols), make([]float32, rows*cols)
	u, damp, tries, cerr := FactorWith(p, func(a []float64) ([]float64, error) { return factor(a, cols) })
	rep.Damp, rep.DampRetries = damp, tries
	if cerr != nil {
		rep.Fallback = true
		rep.Warning = fmt.Sprintf("%s: Cholesky of the damped Hessian failed up to relative damping %g (%v); rounded to nearest on the grid instead", name, damp, cerr)
		for i, x := range p.W {
			levels[i], values[i] = grid.Round(i/cols, i%cols, x)
		}
		return levels, values, rep, nil
	}
	g := &gridRun{grid: grid, k: cols, w: p.W, u: u, perm: p.Perm, bs: p.Opt.BlockSize, levels: levels, values: values}
	tiles := (rows + rowTile - 1) / rowTile
	parallelFor(tiles, func(t int) { g.tile(t*rowTile, min((t+1)*rowTile, rows)) })
	return levels, values, rep, nil
}

// gridRun is the state shared by the row tiles of one QuantizeOnGrid call.
type gridRun struct {
	grid   Grid
	k      int
	w      []float32 // dead columns zeroed
	u      []float64 // [K, K] upper Cholesky factor of the damped, permuted H^-1
	perm   []int     // perm[p] = original column visited at position p
	bs     int
	levels []int32 // outputs, original order
	values []float32
}

// tile runs rows [r0, r1): Quantize's loop with the grid's rounding. Each row's
// arithmetic is the same whatever tile it is in.
func (g *gridRun) tile(r0, r1 int) {
	k := g.k
	nt := r1 - r0
	wt := permutedRows(g.w, g.perm, k, r0, nt) // current weights, permuted column order
	errs := make([]float64, nt*g.bs)
	for i1 := 0; i1 < k; i1 += g.bs {
		i2 := min(i1+g.bs, k)
		for i := i1; i < i2; i++ {
			c := g.perm[i]
			d := g.u[i*k+i]
			urow := g.u[i*k+i+1 : i*k+i2]
			for t := 0; t < nt; t++ {
				wv := wt[t*k+i]
				lev, val := g.grid.Round(r0+t, c, float32(wv))
				g.levels[(r0+t)*k+c], g.values[(r0+t)*k+c] = lev, val
				e := (wv - float64(val)) / d
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
