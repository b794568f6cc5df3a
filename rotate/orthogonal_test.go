package rotate

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxOffIdentity returns max |(QᵀQ − I)_ij| for a dense n×n Q.
func maxOffIdentity(q []float64, n int) float64 {
	var worst float64
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for k := 0; k < n; k++ {
				s += q[k*n+i] * q[k*n+j]
			}
			if i == j {
				s--
			}
			worst = max(worst, math.Abs(s))
		}
	}
	return worst
}

func TestOrthogonality(t *testing.T) {
	for _, kind := range []Kind{Hadamard, PlainHadamard, Random, Identity} {
		// 6, 10 and 172 have no Hadamard matrix here: Hadamard falls back to Random.
		for _, n := range []int{1, 2, 6, 8, 10, 12, 24, 64, 80, 172, 256} {
			t.Run(fmt.Sprintf("%s/%d", kind, n), func(t *testing.T) {
				o, err := NewOrthogonal(kind, n, 42)
				require.NoError(t, err)
				require.Equal(t, n, o.Size())
				assert.Less(t, maxOffIdentity(o.Dense(), n), 1e-6)
			})
		}
	}
}

func TestHadamardFallsBackToRandom(t *testing.T) {
	o, err := NewOrthogonal(Hadamard, 172, 1)
	require.NoError(t, err)
	assert.Equal(t, Random, o.Kind())
	o, err = NewOrthogonal(Hadamard, 5120, 1)
	require.NoError(t, err)
	assert.Equal(t, Hadamard, o.Kind())
	assert.Equal(t, "randomized Hadamard 5120 = 20 (Paley I) ⊗ 256", o.String())
	o, err = NewOrthogonal(PlainHadamard, 12, 1)
	require.NoError(t, err)
	assert.Equal(t, "Hadamard 12 = 12 (Paley I) ⊗ 1", o.String())
	h, err := HadamardMatrix(12)
	require.NoError(t, err)
	for i, v := range o.Dense() {
		assert.InDelta(t, h[i]/math.Sqrt(12), v, 1e-15, "plain: H/√n, no signs")
	}
	_, err = NewOrthogonal(Hadamard, 0, 1)
	require.Error(t, err)
}

// The fast transform (signs, then FWHT ⊗ base) against the dense Kronecker product of
// HadamardMatrix: Q_ij = s_i·H_ij/√n with every s_i = ±1.
func TestFastHadamardMatchesDense(t *testing.T) {
	for _, n := range []int{2, 16, 12, 48, 56, 80, 144, 344} {
		o, err := NewOrthogonal(Hadamard, n, 7)
		require.NoError(t, err)
		h, err := HadamardMatrix(n)
		require.NoError(t, err)
		q := o.Dense()
		inv := 1 / math.Sqrt(float64(n))
		flips := 0
		for i := 0; i < n; i++ {
			s := q[i*n] / (h[i*n] * inv) // the sign of row i, from column 0
			require.InDelta(t, 1, math.Abs(s), 1e-12, "order %d row %d", n, i)
			if s < 0 {
				flips++
			}
			for j := 0; j < n; j++ {
				require.InDelta(t, s*h[i*n+j]*inv, q[i*n+j], 1e-12, "order %d (%d, %d)", n, i, j)
			}
		}
		assert.Greater(t, flips, 0, "order %d: the signs are random, not all +", n)
		assert.Less(t, flips, n, "order %d", n)
	}
}

// For orders too large for a dense check, rows of Q (e_i·Q) of a sample must be orthonormal
// and random vectors must keep their length.
func TestLargeOrdersSampled(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the sampled orthogonality of orders 5120 and 11008")
	}
	r := testutil.Rand(3)
	for _, n := range []int{5120, 11008} {
		o, err := NewOrthogonal(Hadamard, n, 9)
		require.NoError(t, err)
		require.Equal(t, Hadamard, o.Kind())
		idx := []int{0, 1, n / 3, n / 2, n - 1}
		rows := make([][]float64, len(idx))
		for k, i := range idx {
			rows[k] = make([]float64, n)
			rows[k][i] = 1
			o.MulRows(rows[k])
		}
		for a := range rows {
			for b := range rows {
				want := 0.0
				if a == b {
					want = 1
				}
				assert.InDelta(t, want, dot(rows[a], rows[b]), 1e-12, "order %d rows %d, %d", n, idx[a], idx[b])
			}
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		before := math.Sqrt(dot(x, x))
		o.MulRows(x)
		assert.InDelta(t, before, math.Sqrt(dot(x, x)), 1e-9*before, "order %d", n)
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	for _, kind := range []Kind{Hadamard, Random} {
		for _, n := range []int{64, 12, 10} {
			a, err := NewOrthogonal(kind, n, 5)
			require.NoError(t, err)
			b, err := NewOrthogonal(kind, n, 5)
			require.NoError(t, err)
			c, err := NewOrthogonal(kind, n, 6)
			require.NoError(t, err)
			da, db, dc := a.Dense(), b.Dense(), c.Dense()
			for i := range da {
				require.Equal(t, math.Float64bits(da[i]), math.Float64bits(db[i]), "%s %d: same seed, element %d", kind, n, i)
			}
			differ := 0
			for i := range da {
				if da[i] != dc[i] {
					differ++
				}
			}
			assert.Greater(t, differ, len(da)/4, "%s %d: another seed gives another matrix", kind, n)
			// Not only other signs: a vector's rotated magnitudes differ too (signs applied
			// after the Hadamard matrix would only flip output signs).
			xa, xc := make([]float64, n), make([]float64, n)
			for i := range xa {
				xa[i] = float64(i*i%11) - 4
				xc[i] = xa[i]
			}
			a.MulRows(xa)
			c.MulRows(xc)
			mags := 0
			for i := range xa {
				if math.Abs(math.Abs(xa[i])-math.Abs(xc[i])) > 1e-9 {
					mags++
				}
			}
			assert.Greater(t, mags, n/4, "%s %d: another seed mixes differently", kind, n)
		}
	}
}

func TestMulRowsBlockDiagonal(t *testing.T) {
	o, err := NewOrthogonal(Hadamard, 4, 1)
	require.NoError(t, err)
	q := o.Dense()
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	o.MulRows(x)
	for blk, in := range [][]float64{{1, 2, 3, 4}, {5, 6, 7, 8}} {
		for j := 0; j < 4; j++ {
			var want float64
			for i, v := range in {
				want += v * q[i*4+j]
			}
			assert.InDelta(t, want, x[blk*4+j], 1e-12)
		}
	}
	assert.Panics(t, func() { o.MulRows(make([]float64, 6)) })
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{Hadamard, PlainHadamard, Random, Identity} {
		got, err := ParseKind(k.String())
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	_, err := ParseKind("givens")
	require.ErrorContains(t, err, `unknown rotation "givens"`)
}
