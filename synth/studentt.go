package synth

import (
	"math"
	"math/bits"
	"sync"
)

// Student-t(5) samples by table lookup: drawing one with normals (z / sqrt(chi2_5/5)) costs
// six normal variates, ~40 ns; a table of the inverse tail function indexed by the bits of
// one uint64 costs a few ns and is as exact as float32 output needs.
//
// A 64-bit draw r gives the sign (top bit) and q = P(|T| > t) in (0, 1) (the other 63
// bits). q is split into octaves [2^-(k+1), 2^-k) by its leading zeros, so the heavy tail
// gets as many table cells as the body; each octave has tCells cells, interpolated
// linearly with the next 24 bits.
const (
	tOctaves = 48
	tCells   = 256
	t5Var    = 5.0 / 3.0 // variance of Student-t(5)
)

var (
	tTableOnce sync.Once
	tTable     *[tOctaves][tCells + 1]float32
)

// t5Table returns the table: tTable[k][j] is the t >= 0 with P(|T| > t) = 2^-(k+1) *
// (1 + j/tCells).
func t5Table() *[tOctaves][tCells + 1]float32 {
	tTableOnce.Do(func() {
		var tab [tOctaves][tCells + 1]float32
		for k := range tab {
			for j := range tab[k] {
				q := math.Ldexp(1+float64(j)/tCells, -(k + 1))
				tab[k][j] = float32(t5Quantile(q))
			}
		}
		tTable = &tab
	})
	return tTable
}

// t5Sample maps 64 random bits to a Student-t(5) value. Draws beyond the last octave
// (q < 2^-48) are folded into it, deterministically.
func t5Sample(tab *[tOctaves][tCells + 1]float32, r uint64) float32 {
	x := r << 1 // the 63 bits of q, as a fraction of 2^64
	k := min(bits.LeadingZeros64(x), tOctaves-1)
	m := x << (k + 1) // the bits after q's leading one
	j := m >> (64 - 8)
	f := float32(m<<8>>40) * (1.0 / (1 << 24))
	row := &tab[k]
	a, b := row[j], row[j+1]
	// The explicit conversion forbids fusing into an FMA, which would change the rounding
	// on some architectures (the Go spec allows fusion otherwise).
	v := a + float32(f*(b-a))
	return math.Float32frombits(math.Float32bits(v) | uint32(r>>63)<<31)
}

// t5Tail is P(|T| > t) for T ~ Student-t(5), as a function of phi = atan(sqrt(5)/t) in
// [0, pi/2] (t = sqrt(5) cot phi): (2/pi) (phi - (2/3) sin 2phi + (1/12) sin 4phi), whose
// derivative (16/(3 pi)) sin^4 phi is the density in phi. For small phi the closed form
// cancels (its phi and phi^3 terms vanish), so the Taylor series is summed instead.
func t5Tail(phi float64) float64 {
	if phi >= 0.5 {
		return 2 / math.Pi * (phi - 2.0/3*math.Sin(2*phi) + math.Sin(4*phi)/12)
	}
	// phi^(2n+1) coefficient: (-1)^n (4^(2n+1)/12 - (2/3) 2^(2n+1)) / (2n+1)!, n >= 2.
	sum, p2, p4, fact, pw := 0.0, 32.0, 1024.0, 120.0, math.Pow(phi, 5)
	for n := 2; n < 20; n++ {
		c := (p4/12 - 2.0/3*p2) / fact
		if n%2 == 1 {
			c = -c
		}
		sum += c * pw
		p2 *= 4
		p4 *= 16
		fact *= float64((2*n + 2) * (2*n + 3))
		pw *= phi * phi
	}
	return 2 / math.Pi * sum
}

// t5Quantile is the t >= 0 with P(|T| > t) = q, by bisection on phi (t5Tail increases
// with phi).
func t5Quantile(q float64) float64 {
	lo, hi := 0.0, math.Pi/2
	for i := 0; i < 64; i++ {
		mid := (lo + hi) / 2
		if t5Tail(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	phi := (lo + hi) / 2
	return math.Sqrt(5) * math.Cos(phi) / math.Sin(phi)
}

// t5CDF is P(T <= t) for T ~ Student-t(5) (tests).
func t5CDF(t float64) float64 {
	phi := math.Atan2(math.Sqrt(5), math.Abs(t))
	tail := t5Tail(phi) / 2
	if t < 0 {
		return tail
	}
	return 1 - tail
}
