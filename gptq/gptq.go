package gptq

import (
	"errors"
	"sync"

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
	// result is stored in the original column order; Groups says how the scale groups are
	// formed.
	ActOrder bool
	// Groups is the scale grouping with ActOrder (PerGroup schemes): GroupsStatic (the zero
	// value) or GroupsDynamic.
	Groups GroupOrder
	// Clip is how a group's range is chosen when the group is reached.
	Clip Clip
	// DampTries is how many damping values are tried (each 10x the previous) before the
	// layer falls back to round-to-nearest; 0 means DefaultDampTries.
	DampTries int
}

// GroupOrder says how scale groups are formed when columns are visited in activation order.
// The names are compressed-tensors' aliases of its actorder values.
type GroupOrder uint8

const (
	// GroupsStatic keeps the original contiguous column groups; a group's parameters are
	// chosen, from the current error-updated weights of all its columns, when the first of
	// its columns is visited. The output carries no permutation and no g_idx, so every kernel
	// and export applies (compressed-tensors actorder "weight"/"static", AutoGPTQ's
	// static_groups).
	GroupsStatic GroupOrder = iota
	// GroupsDynamic makes each group the next GroupSize columns in visiting order, its
	// parameters chosen when its first column is visited (the GPTQ reference's act-order
	// grouping). The output's QTensor.GIdx maps each column to its group (compressed-tensors
	// actorder "group"/"dynamic", stored as weight_g_idx).
	GroupsDynamic
)

var groupOrderNames = []string{GroupsStatic: "static", GroupsDynamic: "dynamic"}

// ParseGroupOrder accepts "static" and "dynamic".
func ParseGroupOrder(s string) (GroupOrder, error) {
	return quant.ParseEnum[GroupOrder](s, groupOrderNames, "act-order grouping", "static or dynamic")
}

func (g GroupOrder) String() string { return quant.EnumName("GroupOrder", g, groupOrderNames) }

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
	return QuantizeWith(nil, name, w, rows, cols, s, h, opt)
}

// QuantizeWith is Quantize keeping the factor of H in c (nil: none), so that quantizing
// one layer in several schemes (the sensitivity pass's candidates) factors its H once: the
// factor depends on H, the visiting order and the damping, not on the scheme or weights.
func QuantizeWith(c *FactorCache, name string, w []float32, rows, cols int, s quant.Scheme, h *Hessian, opt Options) (*quant.QTensor, Report, error) {
	rep := Report{Layer: name}
	p, err := Prepare(name, w, rows, cols, s, h, opt)
	if err != nil {
		return nil, rep, err
	}
	rep.DeadColumns = p.Dead
	u, damp, tries, cerr := c.factor(p, h)
	rep.Damp, rep.DampRetries = damp, tries
	if cerr != nil {
		return p.RTNFallback(rep, cerr)
	}
	l := p.layout()
	g := &gptqRun{s: s, l: l, w: p.W, u: u, perm: p.Perm, bs: p.Opt.BlockSize, clip: p.Opt.Clip,
		levels: make([]int32, rows*cols), scales: make([]float32, l.NParams()), zeros: make([]int32, l.NParams())}
	g.invperm = make([]int, cols)
	for i, c := range p.Perm {
		g.invperm[c] = i
	}
	gidx := p.GroupIndex()
	if fs, fz := p.FixedParams(); fs != nil {
		g.scales, g.zeros, g.fixed = fs, fz, true
	} else {
		g.group, g.members = groupMembers(gidx, p.Perm, l)
		if act := p.actH(); act != nil {
			g.blocks = make([][]float64, l.Groups)
			for k := range g.blocks {
				g.blocks[k] = subMatrix(act, cols, g.members[k])
			}
		}
	}
	tiles := (rows + rowTile - 1) / rowTile
	parallelFor(tiles, func(t int) { g.tile(t*rowTile, min((t+1)*rowTile, rows)) })
	q, err := quant.NewQTensor(name, s, rows, cols, g.levels, g.scales, g.zeros)
	if err != nil {
		return nil, rep, err
	}
	if gidx != nil {
		q.GIdx = gidx
		if err := q.Validate(); err != nil {
			return nil, rep, err
		}
	}
	return q, rep, nil
}

// groupMembers returns each column's group and each group's columns: by gidx (groups in
// visiting order, members in visiting order) or, when gidx is nil, the contiguous groups
// (members in column order).
func groupMembers(gidx []int32, perm []int, l quant.Layout) ([]int, [][]int) {
	group := make([]int, l.Cols)
	members := make([][]int, l.Groups)
	if gidx == nil {
		for c := range group {
			group[c] = c / l.GroupSize
			members[group[c]] = append(members[group[c]], c)
		}
		return group, members
	}
	for _, c := range perm {
		group[c] = int(gidx[c])
		members[group[c]] = append(members[group[c]], c)
	}
	return group, members
}

// subMatrix returns m[idx, idx] (m is k x k row-major).
func subMatrix(m []float64, k int, idx []int) []float64 {
	n := len(idx)
	out := make([]float64, n*n)
	for i, a := range idx {
		for j, b := range idx {
			out[i*n+j] = m[a*k+b]
		}
	}
	return out
}

// FactorWith runs factor (which returns the upper Cholesky factor of the inverse of its
// argument, or an error wrapping ErrNotPositiveDefinite) on p.Damped(damp), multiplying
// the damping by 10 after each failure, up to p.Opt.DampTries attempts. It returns the
// factor, the damping used, the number of retries and the last error.
func FactorWith(p *Problem, factor func(a []float64) ([]float64, error)) ([]float64, float64, int, error) {
	damp := p.Opt.Damp
	var err error
	for try := 0; try < p.Opt.DampTries; try++ {
		var u []float64
		if u, err = factor(p.Damped(damp)); err == nil {
			return u, damp, try, nil
		}
		if !errors.Is(err, ErrNotPositiveDefinite) {
			return nil, damp, try, err
		}
		if try < p.Opt.DampTries-1 {
			damp *= dampRetryMultiple
		}
	}
	return nil, damp, p.Opt.DampTries - 1, err
}

// roundAll is round-to-nearest with given parameters.
func roundAll(s quant.Scheme, l quant.Layout, w []float32, scales []float32, zeros []int32) []int32 {
	levels := make([]int32, len(w))
	for r := 0; r < l.Rows; r++ {
		for c := 0; c < l.Cols; c++ {
			p := l.Param(r, c)
			levels[r*l.Cols+c] = s.QuantizeValue(w[r*l.Cols+c], scales[p], zeros[p])
		}
	}
	return levels
}

// FactorCache keeps the last layer's factor (one layer's at a time: a factor is cols^2
// float64s), keyed by the *Hessian: H must not change while it is cached. Safe for
// concurrent use; the zero value is ready.
type FactorCache struct {
	mu    sync.Mutex
	key   factorKey
	u     []float64
	damp  float64
	tries int
	err   error
}

type factorKey struct {
	h               *Hessian
	actOrder        bool
	damp            float64
	dampTries, cols int
}

// factor is FactorWith(p, factor) through the cache (c nil: no cache).
func (c *FactorCache) factor(p *Problem, h *Hessian) ([]float64, float64, int, error) {
	run := func() ([]float64, float64, int, error) {
		return FactorWith(p, func(a []float64) ([]float64, error) { return factor(a, p.Cols) })
	}
	if c == nil {
		return run()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := factorKey{h: h, actOrder: p.Opt.ActOrder, damp: p.Opt.Damp, dampTries: p.Opt.DampTries, cols: p.Cols}
	if c.u == nil && c.err == nil || c.key != k {
		c.key = k
		c.u, c.damp, c.tries, c.err = run()
	}
	return c.u, c.damp, c.tries, c.err
}
