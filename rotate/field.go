package rotate

// quadraticCharacter returns, for an odd prime power q = p^k, the quadratic character χ of
// GF(q) as a table over element codes (χ(0) = 0, +1 on nonzero squares, -1 elsewhere) and
// the subtraction of two codes. An element's code holds its coefficients over GF(p) as
// base-p digits, the constant term lowest: subtraction is digit-wise mod p, which is all
// the Jacobsthal matrix needs besides χ. ok is false when q is not an odd prime power.
func quadraticCharacter(q int) (chi []int8, sub func(a, b int) int, ok bool) {
	p, k := primePower(q)
	if p <= 2 {
		return nil, nil, false
	}
	mul := func(a, b int) int { return a * b % p }
	if k > 1 {
		mul = polyMul(p, k, irreducible(p, k))
	}
	chi = make([]int8, q)
	for a := 1; a < q; a++ {
		chi[a] = -1
	}
	for a := 1; a < q; a++ {
		chi[mul(a, a)] = 1
	}
	sub = func(a, b int) int {
		code, place := 0, 1
		for i := 0; i < k; i++ {
			d := (a%p - b%p + p) % p
			code += d * place
			a, b, place = a/p, b/p, place*p
		}
		return code
	}
	return chi, sub, true
}

// primePower returns (p, k) with q = p^k for a prime p, or (0, 0).
func primePower(q int) (p, k int) {
	if q < 2 {
		return 0, 0
	}
	p = q
	for d := 2; d*d <= q; d++ {
		if q%d == 0 {
			p = d
			break
		}
	}
	for q%p == 0 {
		q /= p
		k++
	}
	if q != 1 {
		return 0, 0
	}
	return p, k
}

// digits returns the k base-p digits of code, lowest first.
func digits(code, p, k int) []int {
	d := make([]int, k)
	for i := range d {
		d[i] = code % p
		code /= p
	}
	return d
}

// irreducible returns the coefficients (lowest first, k of them; the x^k coefficient is 1)
// of the first monic irreducible polynomial of degree k over GF(p) in code order. One
// always exists; the search is deterministic.
func irreducible(p, k int) []int {
	q := 1
	for i := 0; i < k; i++ {
		q *= p
	}
	for code := 0; code < q; code++ {
		f := append(digits(code, p, k), 1)
		if f[0] != 0 && !hasFactor(f, p) {
			return f[:k]
		}
	}
	panic("rotate: no irreducible polynomial (impossible)")
}

// hasFactor reports whether the monic polynomial f (lowest coefficient first) over GF(p) has
// a monic factor of degree 1..deg(f)/2, by trial division.
func hasFactor(f []int, p int) bool {
	deg := len(f) - 1
	n := 1
	for d := 1; d <= deg/2; d++ {
		n *= p
		for code := 0; code < n; code++ {
			g := append(digits(code, p, d), 1)
			if polyRemIsZero(f, g, p) {
				return true
			}
		}
	}
	return false
}

// polyRemIsZero reports whether monic g divides f over GF(p).
func polyRemIsZero(f, g []int, p int) bool {
	r := append([]int(nil), f...)
	dg := len(g) - 1
	for top := len(r) - 1; top >= dg; top-- {
		c := r[top] % p
		if c == 0 {
			continue
		}
		for i := 0; i <= dg; i++ {
			r[top-dg+i] = ((r[top-dg+i]-c*g[i])%p + p) % p
		}
	}
	for _, c := range r[:dg] {
		if c%p != 0 {
			return false
		}
	}
	return true
}

// polyMul returns the product of two element codes of GF(p^k) = GF(p)[x]/(f), where low
// holds f's coefficients below x^k (f is monic).
func polyMul(p, k int, low []int) func(a, b int) int {
	return func(a, b int) int {
		da, db := digits(a, p, k), digits(b, p, k)
		prod := make([]int, 2*k-1)
		for i, x := range da {
			for j, y := range db {
				prod[i+j] = (prod[i+j] + x*y) % p
			}
		}
		// Reduce with x^k = -low, from the top degree down.
		for top := len(prod) - 1; top >= k; top-- {
			c := prod[top]
			prod[top] = 0
			for i, l := range low {
				prod[top-k+i] = ((prod[top-k+i]-c*l)%p + p) % p
			}
		}
		code, place := 0, 1
		for _, c := range prod[:k] {
			code += c * place
			place *= p
		}
		return code
	}
}
