package gptq

import (
	"cmp"
	"fmt"
	"sort"

	"github.com/autoq/autoq/quant"
)

// Problem is one layer validated and prepared for GPTQ, shared by the CPU reference and
// the GPU implementation (package cgo) so that both start from the same numbers.
type Problem struct {
	Name       string
	Scheme     quant.Scheme
	Rows, Cols int
	GroupSize  int  // columns per scale group (Cols for PerTensor/PerChannel)
	Groups     int  // groups per row
	PerTensor  bool // one scale for the whole matrix
	Opt        Options
	W          []float32 // the weights with dead columns zeroed
	H          []float64 // mean second moment [Cols, Cols], dead inputs' diagonal set to 1, undamped
	Dead       int       // number of dead inputs
	Perm       []int     // column visiting order (identity unless Opt.ActOrder)
}

// Prepare validates a layer, applies the option defaults and handles dead inputs
// (diag H = 0: H_ii = 1 and the weight column zeroed, as the reference GPTQ does).
func Prepare(name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian, opt Options) (*Problem, error) {
	l, err := checkLayer(name, w, rows, cols, s)
	if err != nil {
		return nil, err
	}
	if err := checkHessian(name, h, cols); err != nil {
		return nil, err
	}
	if opt.Damp < 0 || opt.BlockSize < 0 || opt.DampTries < 0 {
		return nil, fmt.Errorf("%s: negative option (damp %g, block size %d, damp tries %d)", name, opt.Damp, opt.BlockSize, opt.DampTries)
	}
	opt.Damp = cmp.Or(opt.Damp, DefaultDamp) // cmp.Or: the first that is not zero
	opt.BlockSize = cmp.Or(opt.BlockSize, DefaultBlockSize)
	opt.DampTries = cmp.Or(opt.DampTries, DefaultDampTries)
	p := &Problem{Name: name, Scheme: s, Rows: rows, Cols: cols, GroupSize: l.GroupSize, Groups: l.Groups,
		PerTensor: l.PerTensor, Opt: opt, W: append([]float32(nil), w...), H: h.Matrix()}
	for i := 0; i < cols; i++ {
		if p.H[i*cols+i] == 0 { // an input that is always zero: its weights never matter
			p.H[i*cols+i] = 1
			p.Dead++
			for r := 0; r < rows; r++ {
				p.W[r*cols+i] = 0
			}
		}
	}
	p.Perm = make([]int, cols)
	for i := range p.Perm {
		p.Perm[i] = i
	}
	if opt.ActOrder {
		hm := p.H
		sort.SliceStable(p.Perm, func(a, b int) bool { return hm[p.Perm[a]*cols+p.Perm[a]] > hm[p.Perm[b]*cols+p.Perm[b]] })
	}
	return p, nil
}

// GroupIndex returns the column-to-group map of GroupsDynamic (group of column c = its
// position in the visiting order / GroupSize), or nil when the groups are the contiguous
// ones: static grouping, no act-order, not PerGroup, or an identity visiting order.
func (p *Problem) GroupIndex() []int32 {
	if !p.Opt.ActOrder || p.Opt.Groups != GroupsDynamic || p.Scheme.Granularity != quant.PerGroup {
		return nil
	}
	gidx := make([]int32, p.Cols)
	contiguous := true
	for pos, c := range p.Perm {
		gidx[c] = int32(pos / p.GroupSize)
		contiguous = contiguous && pos/p.GroupSize == c/p.GroupSize
	}
	if contiguous {
		return nil
	}
	return gidx
}

func (p *Problem) layout() quant.Layout {
	return quant.Layout{Rows: p.Rows, Cols: p.Cols, GroupSize: p.GroupSize, Groups: p.Groups, PerTensor: p.PerTensor}
}

// actH is H for the act-mse search, or nil when the search does not use it.
func (p *Problem) actH() []float64 {
	if p.Opt.Clip == ClipActMSE {
		return p.H
	}
	return nil
}

// Damped returns the permuted H plus damp*mean(diag H)*I.
func (p *Problem) Damped(damp float64) []float64 {
	n := p.Cols
	var mean float64
	for i := 0; i < n; i++ {
		mean += p.H[i*n+i]
	}
	mean /= float64(n)
	hp := make([]float64, n*n)
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			hp[a*n+b] = p.H[p.Perm[a]*n+p.Perm[b]]
		}
		hp[a*n+a] += damp * mean
	}
	return hp
}

// FixedParams returns the parameters that do not depend on error feedback: for PerTensor
// (one scale, chosen from the original weights at the first column) and PerChannel (a row's
// only group, reached at its first column before any update) the search over the
// original weights; nil for PerGroup.
func (p *Problem) FixedParams() ([]float32, []int32) {
	if p.Scheme.Granularity == quant.PerGroup {
		return nil, nil
	}
	return searchAll(p.Scheme, p.layout(), p.W, p.actH(), p.Opt.Clip)
}

// RTNFallback quantizes by round-to-nearest (ranges by Opt.Clip) and fills the report,
// for when the Cholesky factorization failed at every damping.
func (p *Problem) RTNFallback(rep Report, cause error) (*quant.QTensor, Report, error) {
	rep.Fallback = true
	rep.Warning = fmt.Sprintf("%s: Cholesky of the damped Hessian failed up to relative damping %g (%v); quantized by round-to-nearest instead", p.Name, rep.Damp, cause)
	scales, zeros := searchAll(p.Scheme, p.layout(), p.W, p.actH(), p.Opt.Clip)
	levels := roundAll(p.Scheme, p.layout(), p.W, scales, zeros)
	q, err := quant.NewQTensor(p.Name, p.Scheme, p.Rows, p.Cols, levels, scales, zeros)
	return q, rep, err
}
