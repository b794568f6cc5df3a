package rotate

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/autoq/autoq/quant"
)

// Kind is how a rotation is drawn.
type Kind uint8

const (
	// Hadamard is a randomized Hadamard matrix diag(s)·H/√n (s a seeded ±1 vector) where
	// HasHadamard(n), else a Random one. The signs come first: x·Q = (x ⊙ s)·H/√n, so
	// each seed mixes differently (with H·diag(s) a seed would only flip output signs,
	// leaving every magnitude, and so most of quantization, the same).
	Hadamard Kind = iota
	// Random is a seeded random orthogonal matrix (Gram–Schmidt of a Gaussian matrix).
	Random
	// Identity does not rotate: Rotator then only folds the RMSNorm weights.
	Identity
	// PlainHadamard is H/√n without random signs (the seed is not used) where
	// HasHadamard(n), else a Random one.
	PlainHadamard
)

var kindNames = []string{Hadamard: "hadamard", Random: "random", Identity: "identity", PlainHadamard: "plain-hadamard"}

func (k Kind) String() string { return quant.EnumName("Kind", k, kindNames) }

// ParseKind accepts "hadamard", "plain-hadamard", "random" and "identity".
func ParseKind(s string) (Kind, error) {
	return quant.ParseEnum[Kind](s, kindNames, "rotation", "hadamard, plain-hadamard, random or identity")
}

// Orthogonal is an n×n orthogonal matrix Q that multiplies row vectors, x ↦ x·Q. A
// randomized Hadamard one is applied in O(n·(log n + m)) per vector (a fast Walsh–Hadamard
// transform for the power-of-two factor, a dense product for the base order m); a random
// one is stored densely (O(n²) per vector).
type Orthogonal struct {
	n     int
	kind  Kind      // what was built, after any fallback to Random
	m     int       // Hadamard base order (1: Sylvester only)
	base  []float64 // m×m ±1 base matrix; nil when m == 1
	signs []float64 // Hadamard: s_i/√n
	dense []float64 // Random: Q row-major
}

// NewOrthogonal draws an n×n rotation of the given kind from seed. Hadamard falls back to
// Random when no Hadamard matrix of order n is buildable (Kind tells which was built).
// The same (kind, n, seed) always gives the same bits.
func NewOrthogonal(kind Kind, n int, seed uint64) (*Orthogonal, error) {
	if n <= 0 {
		return nil, fmt.Errorf("rotate: rotation order must be positive, got %d", n)
	}
	switch kind {
	case Identity:
		return &Orthogonal{n: n, kind: Identity}, nil
	case Hadamard, PlainHadamard:
		if m := hadamardBase(n); m != 0 {
			return newHadamard(n, m, seed, kind == Hadamard), nil
		}
		return newRandom(n, seed), nil
	case Random:
		return newRandom(n, seed), nil
	}
	return nil, fmt.Errorf("rotate: unknown rotation kind %d", kind)
}

// newRNG returns the generator of one seed: PCG with a fixed stream, whose Uint64 sequence
// is specified, so the draws do not depend on the Go release.
func newRNG(seed uint64) *rand.PCG { return rand.NewPCG(seed, 0x726f74617465) } // "rotate"

func newHadamard(n, m int, seed uint64, randomSigns bool) *Orthogonal {
	o := &Orthogonal{n: n, kind: PlainHadamard, m: m, signs: make([]float64, n)}
	if randomSigns {
		o.kind = Hadamard
	}
	if m > 1 {
		o.base = baseMatrix(m)
	}
	g := newRNG(seed)
	inv := 1 / math.Sqrt(float64(n))
	for i := range o.signs {
		o.signs[i] = inv
		if randomSigns && g.Uint64()>>63 == 1 {
			o.signs[i] = -inv
		}
	}
	return o
}

// newRandom orthonormalises the rows of a Gaussian matrix by modified Gram–Schmidt, twice
// (one pass loses orthogonality in proportion to the condition number; two are enough).
// The rows of the result are orthonormal, so it is orthogonal; the distribution is Haar
// (Gram–Schmidt is QR with a positive diagonal of R).
func newRandom(n int, seed uint64) *Orthogonal {
	g := newRNG(seed)
	q := make([]float64, n*n)
	for i := 0; i < len(q); i += 2 {
		a, b := gaussianPair(g)
		q[i] = a
		if i+1 < len(q) {
			q[i+1] = b
		}
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			ri := q[i*n : (i+1)*n]
			for j := 0; j < i; j++ {
				rj := q[j*n : (j+1)*n]
				d := dot(ri, rj)
				for k := range ri {
					ri[k] -= d * rj[k]
				}
			}
			inv := 1 / math.Sqrt(dot(ri, ri))
			for k := range ri {
				ri[k] *= inv
			}
		}
	}
	return &Orthogonal{n: n, kind: Random, dense: q}
}

// gaussianPair is Box–Muller on two uniform draws in (0, 1].
func gaussianPair(g *rand.PCG) (float64, float64) {
	u1 := (float64(g.Uint64()>>11) + 1) / (1 << 53)
	u2 := float64(g.Uint64()>>11) / (1 << 53)
	r := math.Sqrt(-2 * math.Log(u1))
	return r * math.Cos(2*math.Pi*u2), r * math.Sin(2*math.Pi*u2)
}

func dot(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// Size is n.
func (o *Orthogonal) Size() int { return o.n }

// Kind is what was built (Random when Hadamard fell back).
func (o *Orthogonal) Kind() Kind { return o.kind }

// String describes the matrix, e.g. "randomized Hadamard 5120 = 20 (Paley I) ⊗ 256".
func (o *Orthogonal) String() string {
	switch o.kind {
	case Identity:
		return fmt.Sprintf("identity %d", o.n)
	case Random:
		return fmt.Sprintf("random orthogonal %d", o.n)
	}
	name := "randomized Hadamard"
	if o.kind == PlainHadamard {
		name = "Hadamard"
	}
	if o.m <= 2 {
		return fmt.Sprintf("%s %d (Sylvester)", name, o.n)
	}
	return fmt.Sprintf("%s %d = %d (Paley %s) ⊗ %d", name, o.n, o.m, [3]string{"", "I", "II"}[paleyKind(o.m)], o.n/o.m)
}

// MulRows replaces every consecutive n-vector x_r of x (len(x) a multiple of n) by x_r·Q.
// A row of several n-blocks is so multiplied by the block-diagonal diag(Q, Q, ...).
func (o *Orthogonal) MulRows(x []float64) {
	if len(x)%o.n != 0 {
		panic(fmt.Sprintf("rotate: %d values are not rows of %d", len(x), o.n))
	}
	if o.kind == Identity {
		return
	}
	tmp := make([]float64, o.n)
	for r := 0; r < len(x); r += o.n {
		o.mulRow(x[r:r+o.n], tmp)
	}
}

// mulRow sets x = x·Q; tmp is scratch of length n.
func (o *Orthogonal) mulRow(x, tmp []float64) {
	switch o.kind {
	case Identity:
		return
	case Random:
		clear(tmp)
		for i, xi := range x {
			if xi == 0 {
				continue
			}
			row := o.dense[i*o.n : (i+1)*o.n]
			for j, q := range row {
				tmp[j] += xi * q
			}
		}
		copy(x, tmp)
		return
	}
	for i, s := range o.signs {
		x[i] *= s
	}
	// x·(H_m ⊗ H_p): with x viewed as an m×p matrix X, that is H_mᵀ·X·H_p.
	p := o.n / o.m
	for a := 0; a < o.m; a++ {
		fwht(x[a*p : (a+1)*p])
	}
	if o.m > 1 {
		clear(tmp)
		for a := 0; a < o.m; a++ {
			xa := x[a*p : (a+1)*p]
			for b := 0; b < o.m; b++ {
				c := o.base[a*o.m+b]
				yb := tmp[b*p : (b+1)*p]
				if c > 0 {
					for i, v := range xa {
						yb[i] += v
					}
				} else {
					for i, v := range xa {
						yb[i] -= v
					}
				}
			}
		}
		copy(x, tmp)
	}
}

// fwht sets x = x·H_p in place (Sylvester order; len(x) a power of two).
func fwht(x []float64) {
	n := len(x)
	h := 1
	if n >= 4 { // the first two levels at once: short inner loops cost more than the adds
		for i := 0; i < n; i += 4 {
			s0, d0 := x[i]+x[i+1], x[i]-x[i+1]
			s1, d1 := x[i+2]+x[i+3], x[i+2]-x[i+3]
			x[i], x[i+1], x[i+2], x[i+3] = s0+s1, d0+d1, s0-s1, d0-d1
		}
		h = 4
	}
	for ; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			a, b := x[i:i+h], x[i+h:i+2*h]
			for j := range a {
				a[j], b[j] = a[j]+b[j], a[j]-b[j]
			}
		}
	}
}

// Dense returns Q as an n×n row-major matrix (for tests and small orders).
func (o *Orthogonal) Dense() []float64 {
	q := make([]float64, o.n*o.n)
	for i := 0; i < o.n; i++ {
		q[i*o.n+i] = 1
	}
	o.MulRows(q)
	return q
}
