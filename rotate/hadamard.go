package rotate

import "fmt"

// A Hadamard matrix H of order n has entries ±1 and H·Hᵀ = n·I. autoq builds the orders
//
//	n = m · 2^k
//
// as H_m ⊗ H_{2^k}: the Sylvester matrix H_{2^k} (H_1 = [1], H_2j = [[H_j, H_j], [H_j, -H_j]])
// times a base H_m from Paley's constructions for odd prime powers q:
//
//	Paley I,  m = q + 1,     q ≡ 3 (mod 4): 12 (q = 11), 20 (19), 28 (3³), 108, 140, 344 (7³), ...
//	Paley II, m = 2(q + 1),  q ≡ 1 (mod 4): 36 (q = 17), 52 (5²), 76, 148, ...
//
// which covers the hidden sizes of the Llama/Qwen2/Mistral families (4096 = 2^12,
// 5120 = 20·256, 3584 = 28·128, 6656 = 52·128) and most MLP widths (11008 = 344·32,
// 13824 = 108·128, 14336 = 28·512). Orders such as 172 (= 4·43) exist but need
// constructions that are not here.

// hadamardBase returns the smallest base order m with n = m·2^k that this package can
// build (m = 1 for a power of two), or 0 when there is none.
func hadamardBase(n int) int {
	if n <= 0 {
		return 0
	}
	for m := n >> trailingZeros(n); m <= n; m *= 2 {
		if m == 1 || m == 2 || m%4 == 0 && paleyKind(m) != 0 {
			return m
		}
	}
	return 0
}

func trailingZeros(n int) int {
	k := 0
	for n%2 == 0 {
		n /= 2
		k++
	}
	return k
}

// paleyKind returns 1 when order m comes from Paley I, 2 from Paley II, 0 from neither.
func paleyKind(m int) int {
	if q := m - 1; q%4 == 3 {
		if p, _ := primePower(q); p > 2 {
			return 1
		}
	}
	if m%2 == 0 {
		if q := m/2 - 1; q%4 == 1 {
			if p, _ := primePower(q); p > 2 {
				return 2
			}
		}
	}
	return 0
}

// HasHadamard reports whether this package can build a Hadamard matrix of order n.
func HasHadamard(n int) bool { return hadamardBase(n) != 0 }

// HadamardMatrix returns a Hadamard matrix of order n (row-major, entries ±1): H_m ⊗ H_{2^k}
// for the smallest buildable base m. It is an error when no construction here covers n.
func HadamardMatrix(n int) ([]float64, error) {
	m := hadamardBase(n)
	if m == 0 {
		return nil, fmt.Errorf("rotate: no Hadamard matrix of order %d (need m·2^k with m = 1, 2, q+1 for a prime power q ≡ 3 mod 4, or 2(q+1) for q ≡ 1 mod 4)", n)
	}
	return kron(baseMatrix(m), m, sylvester(n/m), n/m), nil
}

// baseMatrix returns the ±1 base matrix of order m (hadamardBase's result).
func baseMatrix(m int) []float64 {
	if m <= 2 {
		return sylvester(m)
	}
	switch paleyKind(m) {
	case 1:
		return paleyI(m - 1)
	case 2:
		return paleyII(m/2 - 1)
	}
	panic(fmt.Sprintf("rotate: no base Hadamard matrix of order %d", m))
}

// sylvester returns H_n for n a power of two.
func sylvester(n int) []float64 {
	h := []float64{1}
	for size := 1; size < n; size *= 2 {
		h = kron([]float64{1, 1, 1, -1}, 2, h, size)
	}
	return h
}

// kron returns the Kronecker product a ⊗ b of square matrices of orders na and nb.
func kron(a []float64, na int, b []float64, nb int) []float64 {
	n := na * nb
	out := make([]float64, n*n)
	for i := 0; i < na; i++ {
		for j := 0; j < na; j++ {
			for r := 0; r < nb; r++ {
				for c := 0; c < nb; c++ {
					out[(i*nb+r)*n+j*nb+c] = a[i*na+j] * b[r*nb+c]
				}
			}
		}
	}
	return out
}

// jacobsthal returns Q[a][b] = χ(a − b) over GF(q).
func jacobsthal(q int) []float64 {
	chi, sub, ok := quadraticCharacter(q)
	if !ok {
		panic(fmt.Sprintf("rotate: %d is not an odd prime power", q))
	}
	j := make([]float64, q*q)
	for a := 0; a < q; a++ {
		for b := 0; b < q; b++ {
			j[a*q+b] = float64(chi[sub(a, b)])
		}
	}
	return j
}

// borderedJacobsthal returns the order q+1 matrix [[0, 1ᵀ], [side·1, Q]] (Q =
// jacobsthal(q), whose diagonal is χ(0) = 0), the core of both Paley constructions.
func borderedJacobsthal(q int, side float64) []float64 {
	j := jacobsthal(q)
	n := q + 1
	m := make([]float64, n*n)
	for r := 1; r < n; r++ {
		m[r], m[r*n] = 1, side
		for c := 1; c < n; c++ {
			m[r*n+c] = j[(r-1)*q+c-1]
		}
	}
	return m
}

// paleyI returns the order q+1 matrix I + S, S = [[0, 1ᵀ], [−1, Q]] (q ≡ 3 mod 4: Q is
// skew-symmetric, Q·Qᵀ = q·I − J and Q·1 = 0, so H·Hᵀ = (q+1)·I).
func paleyI(q int) []float64 {
	h := borderedJacobsthal(q, -1)
	for i := 0; i <= q; i++ {
		h[i*(q+1)+i] = 1
	}
	return h
}

// paleyII returns the order 2(q+1) matrix for q ≡ 1 mod 4: C = [[0, 1ᵀ], [1, Q]] is
// symmetric with C·Cᵀ = q·I; each 0 becomes [[1, −1], [−1, −1]] and each ±1 becomes
// ±[[1, 1], [1, −1]].
func paleyII(q int) []float64 {
	cm := borderedJacobsthal(q, 1)
	c := q + 1
	n := 2 * c
	h := make([]float64, n*n)
	for i := 0; i < c; i++ {
		for k := 0; k < c; k++ {
			blk := [4]float64{1, -1, -1, -1}
			if v := cm[i*c+k]; v != 0 {
				blk = [4]float64{v, v, v, -v}
			}
			h[(2*i)*n+2*k], h[(2*i)*n+2*k+1] = blk[0], blk[1]
			h[(2*i+1)*n+2*k], h[(2*i+1)*n+2*k+1] = blk[2], blk[3]
		}
	}
	return h
}
