package llamacpp_test

import (
	"errors"
	"testing"

	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gguf/llamacpp"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ggml returns llama.cpp's own quantization code, skipping when it is not installed.
func ggml(t *testing.T) *llamacpp.GGML {
	t.Helper()
	in, err := llamacpp.Find(testutil.RepoRoot(t))
	if errors.Is(err, llamacpp.ErrNotInstalled) {
		t.Skipf("skipping the llama.cpp comparison: %v", err)
	}
	require.NoError(t, err)
	g, err := in.BuildGGML(t.TempDir())
	if errors.Is(err, llamacpp.ErrNotInstalled) {
		t.Skipf("skipping the llama.cpp comparison: %v", err)
	}
	require.NoError(t, err)
	return g
}

var blockTypes = []gguf.Type{gguf.Q8_0, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q6_K}

func TestTypeTableMatchesGGML(t *testing.T) {
	sizes, err := ggml(t).Sizes()
	require.NoError(t, err)
	require.NotEmpty(t, sizes)
	for _, s := range sizes {
		assert.True(t, s.Type.Known(), "ggml type %d (%s) unknown to gguf", s.Type, s.Name)
		assert.Equal(t, s.Block, s.Type.BlockSize(), "%s block size", s.Name)
		assert.Equal(t, s.Size, s.Type.BlockBytes(), "%s block bytes", s.Name)
	}
}

// randomWeights is Gaussian with a few outliers, one all-zero block of 256 and one
// constant block of 32, so the edge cases of every quantizer run.
func randomWeights(rows, cols int, seed uint64) []float32 {
	r := testutil.Rand(seed)
	w := testutil.Gaussian(r, rows*cols, 0.02)
	for i := 0; i < len(w); i += 97 {
		w[i] *= 8
	}
	for i := 0; i < 256; i++ {
		w[cols+i] = 0
	}
	for i := 0; i < 32; i++ {
		w[2*cols+i] = 0.125
	}
	return w
}

func TestDequantizeMatchesGGML(t *testing.T) {
	g := ggml(t)
	r := testutil.Rand(11)
	for _, typ := range blockTypes {
		grid, err := gguf.NewGrid("w", typ, 4, 512)
		require.NoError(t, err)
		for i := range grid.D {
			grid.D[i] = tensor.F32ToF16(float32(r.NormFloat64() * 0.01))
		}
		for i := range grid.M {
			grid.M[i] = tensor.F32ToF16(float32(r.NormFloat64() * 0.01))
		}
		for i := range grid.Sc {
			if typ == gguf.Q4_K {
				grid.Sc[i], grid.Mn[i] = int8(r.IntN(64)), int8(r.IntN(64))
			} else {
				grid.Sc[i] = int8(r.IntN(256) - 128)
			}
		}
		q, err := grid.RoundNearest(randomWeights(4, 512, uint64(typ)))
		require.NoError(t, err)
		raw, err := q.Encode()
		require.NoError(t, err)
		want, err := g.Dequantize(typ, raw, 4*512)
		require.NoError(t, err)
		got, err := gguf.Dequantize("w", typ, 4, 512, raw)
		require.NoError(t, err)
		require.Equal(t, want, got, "%s: gguf.Dequantize differs from ggml's dequantize_row", typ)
	}
}

func TestRefQuantizeMatchesGGML(t *testing.T) {
	g := ggml(t)
	const rows, cols = 6, 768
	imatrix := make([]float32, cols)
	r := testutil.Rand(5)
	for i := range imatrix {
		imatrix[i] = float32(r.ExpFloat64())
	}
	for _, typ := range blockTypes {
		for _, im := range [][]float32{nil, imatrix} {
			w := randomWeights(rows, cols, uint64(typ)+7)
			want, err := g.Quantize(typ, w, rows, cols, im)
			require.NoError(t, err)
			q, err := gguf.RefQuantize("w", typ, w, rows, cols, im)
			require.NoError(t, err)
			got, err := q.Encode()
			require.NoError(t, err)
			require.Equal(t, len(want), len(got))
			diff := 0
			for i := range want {
				if want[i] != got[i] {
					diff++
				}
			}
			assert.Zero(t, diff, "%s (imatrix %v): %d of %d bytes differ from ggml_quantize_chunk", typ, im != nil, diff, len(want))
		}
	}
}
