package rotate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signs turns rows of '+' and '-' into a ±1 matrix.
func signs(rows ...string) []float64 {
	var out []float64
	for _, r := range rows {
		for _, c := range r {
			out = append(out, map[rune]float64{'+': 1, '-': -1}[c])
		}
	}
	return out
}

func TestSylvesterHandChecked(t *testing.T) {
	h2, err := HadamardMatrix(2)
	require.NoError(t, err)
	assert.Equal(t, signs("++", "+-"), h2)
	h4, err := HadamardMatrix(4)
	require.NoError(t, err)
	assert.Equal(t, signs("++++", "+-+-", "++--", "+--+"), h4)
}

// The Paley I matrix of order 12 (q = 11), written out by hand: the squares mod 11 are
// {1, 3, 4, 5, 9}, so χ(−b) for b = 0..10 is 0 − + − − − + + + − +; Jacobsthal row a is
// that row shifted right by a, its zero diagonal becomes +, and the border is a first row of
// + and a first column of − below the corner.
func TestPaley12HandChecked(t *testing.T) {
	want := signs(
		"++++++++++++",
		"-+-+---+++-+",
		"-++-+---+++-",
		"--++-+---+++",
		"-+-++-+---++",
		"-++-++-+---+",
		"-+++-++-+---",
		"--+++-++-+--",
		"---+++-++-+-",
		"----+++-++-+",
		"-+---+++-++-",
		"--+---+++-++",
	)
	h, err := HadamardMatrix(12)
	require.NoError(t, err)
	assert.Equal(t, want, h)
}

// isHadamard checks entries ±1 and H·Hᵀ = n·I exactly (integer arithmetic in float64).
func isHadamard(t *testing.T, h []float64, n int) {
	t.Helper()
	require.Len(t, h, n*n)
	for i, v := range h {
		require.True(t, v == 1 || v == -1, "entry %d is %g", i, v)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			want := 0.0
			if i == j {
				want = float64(n)
			}
			require.Equal(t, want, dot(h[i*n:(i+1)*n], h[j*n:(j+1)*n]), "order %d: rows %d and %d", n, i, j)
		}
	}
}

func TestHadamardOrders(t *testing.T) {
	// Paley I: 12, 20, 28 (q = 27 = 3³), 44, 108, 344 (q = 343 = 7³); Paley II: 36, 52
	// (q = 25 = 5²), 76, 148; with Sylvester factors: 24, 40, 56.
	for _, n := range []int{1, 2, 4, 8, 12, 20, 24, 28, 36, 40, 44, 52, 56, 76, 108, 148, 344} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			require.True(t, HasHadamard(n))
			h, err := HadamardMatrix(n)
			require.NoError(t, err)
			isHadamard(t, h, n)
		})
	}
}

func TestHadamardBaseOfModelWidths(t *testing.T) {
	cases := map[int]int{
		64: 1, 4096: 1, 8192: 1, // powers of two
		5120: 20, 3072: 12, 1536: 12, // Paley I
		896: 28, 3584: 28, 14336: 28, 28672: 28, // Paley I over GF(27)
		6656:  52,  // 13·2^9 = 52·128, Paley II over GF(25)
		11008: 344, // 43·2^8 = 344·32, Paley I over GF(343)
		13824: 108, 8960: 140, 4864: 76, 18944: 148,
		// No construction here: odd orders, 2·odd, and 172 = 4·43 (171 and 85 are not prime
		// powers; H_172 exists but needs Williamson's construction).
		6: 0, 10: 0, 43: 0, 172: 0, 86: 0,
	}
	for n, m := range cases {
		assert.Equal(t, m, hadamardBase(n), "order %d", n)
		assert.Equal(t, m != 0, HasHadamard(n), "order %d", n)
	}
	_, err := HadamardMatrix(172)
	require.ErrorContains(t, err, "no Hadamard matrix of order 172")
}

func TestQuadraticCharacterCounts(t *testing.T) {
	for _, q := range []int{3, 5, 7, 9, 11, 13, 25, 27, 49, 121, 125, 343} {
		chi, sub, ok := quadraticCharacter(q)
		require.True(t, ok, "q = %d", q)
		plus, minus := 0, 0
		for _, c := range chi[1:] {
			if c == 1 {
				plus++
			} else if c == -1 {
				minus++
			}
		}
		assert.Equal(t, (q-1)/2, plus, "q = %d: half the nonzero elements are squares", q)
		assert.Equal(t, (q-1)/2, minus, "q = %d", q)
		assert.Equal(t, int8(0), chi[0])
		for a := 0; a < q; a++ {
			assert.Equal(t, 0, sub(a, a))
		}
	}
	for _, q := range []int{1, 2, 4, 6, 15, 171} {
		_, _, ok := quadraticCharacter(q)
		assert.False(t, ok, "q = %d is not an odd prime power", q)
	}
}
