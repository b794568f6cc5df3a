package gptq

import (
	"errors"
	"fmt"
	"sort"

	"github.com/autoq/autoq/quant"
)

// Defaults for Options fields left zero.
const (
	DefaultDamp       = 0.01
	DefaultBlockSize  = 128
	DefaultDampTries  = 4 // damp, 10*damp, 100*damp, 1000*damp
	rowTile           = 16
	dampRetryMultiple = 10
)

// Options configures Quantize. The zero value means: damping 0.01, blocks of 128
// columns, natural column order, min/max group ranges.
type Options struct {
	// Damp is added to the diagonal as Damp * mean(diag H) before the Cholesky
	// factorization; 0 means DefaultDamp. Negative is an error.
	Damp float64
	// BlockSize is the number of columns quantized between lazy updates of the rest of
	// the matrix; 0 means DefaultBlockSize. It changes rounding only, not the algorithm.
	BlockSize int
	// ActOrder visits columns in decreasing diag(H) order (ties: lower index first). The
	// result is stored in the original column order and scale groups are the original
	// contiguous column groups; a group's parameters are chosen, from the current
	// error-updated weights of all its columns, when the first of its columns is reached.
	// So the output carries no permutation and no g_idx: the same kernels and export apply.
	ActOrder bool
	// Clip is how a group's range is chosen when the group is reached.
	Clip Clip
	// DampTries is how many damping values are tried (each 10x the previous) before the
	// layer falls back to round-to-nearest; 0 means DefaultDampTries.
	DampTries int
}

// Report says what Quantize did for one layer.
type Report struct {
	Layer       string
	DeadColumns int     // inputs whose diag(H) was 0: H_ii set to 1, weight column zeroed
	Damp        float64 // relative damping finally used
	DampRetries int     // how many times the damping was multiplied by 10
	Fallback    bool    // the Cholesky failed at every damping: round-to-nearest was used
	Warning     string  // set when Fallback (or other degradations) happened
}

// Quantize quantizes w ([rows, cols] row-major, rows = outputs) with GPTQ-style error
// compensation against the input second moment h (width cols). Each column (in natural
// or act order) is rounded with its group's parameters, and the rounding error, divided
// by U[i,i], is subtracted along row i of U (the upper Cholesky factor of
// (H + damp*mean(diag H)*I)^-1) from the not-yet-quantized columns: immediately inside
// the current block of BlockSize columns, in one batched update for the columns after it.
//
// Rows are independent given U, so they are processed in parallel tiles; the bits do not
// depend on the number of workers. Weights, H and U are float64 during the algorithm;
// levels are chosen with quant's float32 QuantizeValue on float32(current weight).
func Quantize(name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian, opt Options) (*quant.QTensor, Report, error) {
	rep := Report{Layer: name}
	l, err := checkLayer(name, w, rows, cols, s)
	if err != nil {
		return nil, rep, err
	}
	if err := checkHessian(name, h, cols); err != nil {
		return nil, rep, err
	}
	if opt.Damp < 0 || opt.BlockSize < 0 || opt.DampTries < 0 {
		return nil, rep, fmt.Errorf("%s: negative option (damp %g, block size %d, damp tries %d)", name, opt.Damp, opt.BlockSize, opt.DampTries)
	}
	if opt.Damp == 0 {
		opt.Damp = DefaultDamp
	}
	if opt.BlockSize == 0 {
		opt.BlockSize = DefaultBlockSize
	}
	if opt.DampTries == 0 {
		opt.DampTries = DefaultDampTries
	}

	hm := h.Matrix()
	wz := append([]float32(nil), w...)
	for i := 0; i < cols; i++ {
		if hm[i*cols+i] == 0 { // an input that is always zero: its weights never matter
			hm[i*cols+i] = 1
			rep.DeadColumns++
			for r := 0; r < rows; r++ {
				wz[r*cols+i] = 0
			}
		}
	}
	perm := make([]int, cols)
	for i := range perm {
		perm[i] = i
	}
	if opt.ActOrder {
		sort.SliceStable(perm, func(a, b int) bool { return hm[perm[a]*cols+perm[a]] > hm[perm[b]*cols+perm[b]] })
	}

	u, damp, tries, cerr := dampedFactor(hm, cols, perm, opt.Damp, opt.DampTries)
	rep.Damp, rep.DampRetries = damp, tries
	var act []float64
	if opt.Clip == ClipActMSE {
		act = hm
	}
	if cerr != nil {
		rep.Fallback = true
		rep.Warning = fmt.Sprintf("%s: Cholesky of the damped Hessian failed up to relative damping %g (%v); quantized by round-to-nearest instead", name, damp, cerr)
		scales, zeros := searchAll(s, l, wz, act, opt.Clip)
		levels := roundAll(s, l, wz, scales, zeros)
		q, err := quant.NewQTensor(name, s, rows, cols, levels, scales, zeros)
		return q, rep, err
	}

	g := &gptqRun{s: s, l: l, w: wz, u: u, perm: perm, bs: opt.BlockSize, clip: opt.Clip,
		levels: make([]int32, rows*cols), scales: make([]float32, l.nParams()), zeros: make([]int32, l.nParams())}
	g.invperm = make([]int, cols)
	for p, c := range perm {
		g.invperm[c] = p
	}
	if l.perTensor {
		// One scale for the whole matrix, "reached" at the first column: from the
		// original weights.
		g.scales[0], g.zeros[0] = searchGroup(s, wz, rows, cols, act, opt.Clip, make([]float64, cols))
	} else if act != nil {
		g.blocks = make([][]float64, l.groups)
		for k := range g.blocks {
			g.blocks[k] = diagBlock(act, cols, k*l.gs, l.gs)
		}
	}
	tiles := (rows + rowTile - 1) / rowTile
	parallelFor(tiles, func(t int) { g.tile(t*rowTile, min((t+1)*rowTile, rows)) })
	q, err := quant.NewQTensor(name, s, rows, cols, g.levels, g.scales, g.zeros)
	return q, rep, err
}

// dampedFactor permutes H, adds damp*mean(diag)*I and factors; on failure it multiplies
// the damping by 10, up to tries attempts.
func dampedFactor(hm []float64, n int, perm []int, damp float64, tries int) ([]float64, float64, int, error) {
	var mean float64
	for i := 0; i < n; i++ {
		mean += hm[i*n+i]
	}
	mean /= float64(n)
	hp := make([]float64, n*n)
	var err error
	for try := 0; try < tries; try++ {
		for a := 0; a < n; a++ {
			for b := 0; b < n; b++ {
				hp[a*n+b] = hm[perm[a]*n+perm[b]]
			}
			hp[a*n+a] += damp * mean
		}
		var u []float64
		if u, err = upperCholOfInverse(hp, n); err == nil {
			return u, damp, try, nil
		}
		var npd *notPDError
		if !errors.As(err, &npd) {
			return nil, damp, try, err
		}
		if try < tries-1 {
			damp *= dampRetryMultiple
		}
	}
	return nil, damp, tries - 1, err
}

// roundAll is round-to-nearest with given parameters.
func roundAll(s quant.Scheme, l layout, w []float32, scales []float32, zeros []int32) []int32 {
	levels := make([]int32, len(w))
	for r := 0; r < l.rows; r++ {
		for c := 0; c < l.cols; c++ {
			p := l.param(r, c)
			levels[r*l.cols+c] = s.QuantizeValue(w[r*l.cols+c], scales[p], zeros[p])
		}
	}
	return levels
}
