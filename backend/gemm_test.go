package backend

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

func TestOpenGEMMCPU(t *testing.T) {
	g, tm, fb, err := OpenGEMM("cpu")
	require.NoError(t, err)
	assert.Empty(t, fb)
	assert.Equal(t, "cpu", g.Info().Kind)
	assert.Equal(t, "f32", tm.Kernels()[0].Name)
	_, _, _, err = OpenGEMM("tpu")
	assert.ErrorContains(t, err, "unknown device")
}

// A hand-computed int8 GEMM through the CPU GEMM: [1 2; -3 4] x W^T with W = [5 -6; 7 8].
func TestCPUGEMMHandCase(t *testing.T) {
	w := &quant.QTensor{Name: "w", Scheme: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel},
		Rows: 2, Cols: 2, Groups: 1, Data: []byte{5, 0xFA, 7, 8}, Scales: []float32{0.5, 0.25}}
	g := NewCPUGEMM()
	acc, err := g.GemmI8([]int8{1, 2, -3, 4}, 2, w)
	require.NoError(t, err)
	assert.Equal(t, []int32{5 - 12, 7 + 16, -15 - 24, -21 + 32}, acc)
	out, err := g.GemmW8A8([]int8{1, 2, -3, 4}, []float32{1, 2}, 2, w, []float32{1, 0})
	require.NoError(t, err)
	assert.Equal(t, []float32{-7*0.5 + 1, 23 * 0.25, -39*2*0.5 + 1, 11 * 2 * 0.25}, out)
	_, _, err = g.QuantizeActivationsPerToken([]float32{1, 2, 3}, 2, 2, tensor.F16)
	assert.Error(t, err)
}

func TestCPUGEMMTimer(t *testing.T) {
	g := NewCPUGEMM()
	assert.ErrorContains(t, g.Launch("f32", 1, 0), "Prepare")
	require.NoError(t, g.Prepare(128, 64, 4, nil))
	assert.Equal(t, 0, g.CacheBytes())
	for _, k := range g.Kernels() {
		assert.Equal(t, 4, k.FloatBytes, k.Name)
		calls := 0
		ms, err := g.TimeEach(2, 0, func(i int) error { calls++; return g.Launch(k.Name, 4, i) })
		require.NoError(t, err, k.Name)
		assert.Len(t, ms, 2)
		assert.Equal(t, 2, calls)
	}
	assert.ErrorContains(t, g.Launch("f32", 5, 0), "outside")
	assert.ErrorContains(t, g.Launch("nope", 1, 0), "unknown kernel")
}
