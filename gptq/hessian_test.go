package gptq

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHessianAddHandComputed(t *testing.T) {
	// Two tokens: x1 = (1, 2, 3), x2 = (0, -1, 2).
	h := hessianOf(t, []float32{1, 2, 3, 0, -1, 2}, 2, 3)
	assert.Equal(t, int64(2), h.Tokens)
	// H = x1 x1^T + x2 x2^T.
	want := []float64{
		1, 2, 3,
		2, 5, 4,
		3, 4, 13,
	}
	m := h.Matrix()
	for i := range want {
		assert.InDelta(t, want[i]/2, m[i], 1e-15, "entry %d", i)
	}
}

func TestHessianStreamingAndMergeMatchOneBatch(t *testing.T) {
	r := testutil.Rand(1)
	const k, m = 5, 40
	x := make([]float32, m*k)
	for i := range x { // small integers: every partial sum is exact in float64
		x[i] = float32(r.IntN(9) - 4)
	}
	whole, _ := NewHessian(k)
	require.NoError(t, whole.Add(x, m, k))

	stream, _ := NewHessian(k)
	for t0 := 0; t0 < m; t0 += 7 {
		t1 := min(t0+7, m)
		require.NoError(t, stream.Add(x[t0*k:t1*k], t1-t0, k))
	}
	assert.Equal(t, whole.Sum, stream.Sum)
	assert.Equal(t, whole.Tokens, stream.Tokens)

	a, _ := NewHessian(k)
	b, _ := NewHessian(k)
	require.NoError(t, a.Add(x[:13*k], 13, k))
	require.NoError(t, b.Add(x[13*k:], m-13, k))
	require.NoError(t, a.Merge(b))
	assert.Equal(t, whole.Sum, a.Sum)
	assert.Equal(t, int64(m), a.Tokens)

	c, _ := NewHessian(k + 1)
	assert.ErrorContains(t, a.Merge(c), "width")
}

func TestHessianRandomMergeWithinRounding(t *testing.T) {
	r := testutil.Rand(2)
	const k, m = 8, 100
	x := testutil.Gaussian(r, m*k, 1)
	whole, _ := NewHessian(k)
	require.NoError(t, whole.Add(x, m, k))
	a, _ := NewHessian(k)
	b, _ := NewHessian(k)
	require.NoError(t, a.Add(x[:50*k], 50, k))
	require.NoError(t, b.Add(x[50*k:], 50, k))
	require.NoError(t, b.Merge(a)) // other order
	for i := range whole.Sum {
		assert.InEpsilon(t, whole.Sum[i]+1e-300, b.Sum[i]+1e-300, 1e-12)
	}
}

func TestHessianBadInput(t *testing.T) {
	h, _ := NewHessian(2)
	assert.ErrorContains(t, h.Add([]float32{1, 2, 3}, 1, 3), "width 3")
	assert.ErrorContains(t, h.Add([]float32{1, 2, 3}, 2, 2), "3 values")
	nan := float32(0)
	nan /= nan
	assert.ErrorContains(t, h.Add([]float32{1, 2, 3, nan}, 2, 2), "token 1, input 1")
	assert.Equal(t, int64(0), h.Tokens, "a rejected batch leaves the accumulator unchanged")
	_, err := NewHessian(0)
	assert.Error(t, err)
}

func TestHessianSaveLoad(t *testing.T) {
	r := testutil.Rand(3)
	h, _ := NewHessian(6)
	require.NoError(t, h.Add(testutil.Gaussian(r, 60, 1), 10, 6))
	path := filepath.Join(t.TempDir(), "h.bin")
	require.NoError(t, h.Save(path))
	got, err := LoadHessian(path)
	require.NoError(t, err)
	assert.Equal(t, h, got)

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Len(t, raw, 24+8*21+4)

	bad := append([]byte(nil), raw...)
	bad[40] ^= 1
	require.NoError(t, os.WriteFile(path, bad, 0o644))
	_, err = LoadHessian(path)
	assert.ErrorContains(t, err, "checksum")
	assert.ErrorContains(t, err, path)

	require.NoError(t, os.WriteFile(path, raw[:len(raw)-9], 0o644))
	_, err = LoadHessian(path)
	assert.ErrorContains(t, err, "truncated")

	bad = append([]byte(nil), raw...)
	copy(bad, "XXXX")
	assert.ErrorContains(t, new(Hessian).UnmarshalBinary(bad), "magic")
	bad = append([]byte(nil), raw...)
	bad[4] = 9
	assert.ErrorContains(t, new(Hessian).UnmarshalBinary(bad), "version 9")
}
