//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// withQuantizeVariant runs f with quantize variant v selected, restoring the default after.
func withQuantizeVariant(t *testing.T, g *Backend, v int, f func()) {
	t.Helper()
	require.NoError(t, g.UseKernelVariant(backend.KernelQuantize, v))
	defer func() { require.NoError(t, g.UseKernelVariant(backend.KernelQuantize, 0)) }()
	f()
}

// Every quantize variant gives the CPU reference's bits: every scheme and dtype, odd and
// vector-friendly shapes (the variant only runs where cols and the group size are multiples
// of 8; 4096 and 1032 = 129 chunks make rows with an odd chunk count and a second
// grid-stride pass), adversarial values (huge, tiny, ties) from adversarialMatrix.
func TestQuantizeVariantsMatchCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(11)
	for _, v := range g.KernelVariants(backend.KernelQuantize) {
		withQuantizeVariant(t, g, v, func() {
			for _, sc := range quantCases() {
				cols := append([]int{1032}, sc.cols...)
				if sc.s.Granularity == quant.PerGroup && sc.s.GroupSize%8 != 0 {
					cols = sc.cols
				}
				for _, c := range cols {
					if sc.s.Granularity == quant.PerGroup && c%sc.s.GroupSize != 0 {
						continue
					}
					for _, rows := range []int{1, 9, 70} {
						for _, dt := range dtypes {
							name := fmt.Sprintf("v%d/%s/%dx%d/%s", v, sc.s, rows, c, dt)
							w := asDType(adversarialMatrix(r, rows, c, dt), rows, c, dt)
							t.Run(name, func(t *testing.T) { compareQuantOnly(t, g, name, w, sc.s) })
						}
					}
				}
			}
		})
	}
}

// compareQuantOnly quantizes w with the CPU's parameters on both backends, bit for bit.
func compareQuantOnly(t *testing.T, g *Backend, name string, w *tensor.Tensor, s quant.Scheme) {
	sc, zp, err := cpu.SearchParams(name, w, s, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	want, err := cpu.Quantize(name, w, s, sc, zp)
	require.NoError(t, err)
	got, err := g.Quantize(name, w, s, sc, zp)
	require.NoError(t, err)
	rb := len(want.Data) / max(want.Rows, 1)
	require.Empty(t, firstByteDiff(got.Data, want.Data, rb), "quantized data")
}

// NaN/Inf weights give the CPU reference's error under every variant.
func TestQuantizeVariantsBadInput(t *testing.T) {
	g := gpu(t)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	for _, v := range g.KernelVariants(backend.KernelQuantize) {
		withQuantizeVariant(t, g, v, func() {
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				w := make([]float32, 3*64)
				for i := range w {
					w[i] = float32(i) - 20
				}
				w[2*64+5] = bad
				x := asDType(w, 3, 64, tensor.F16)
				scales := []float32{1, 1, 1}
				_, wantErr := cpu.Quantize("bad", x, s, scales, nil)
				_, gotErr := g.Quantize("bad", x, s, scales, nil)
				require.Error(t, wantErr)
				require.EqualError(t, gotErr, wantErr.Error(), "variant %d, value %v", v, bad)
			}
		})
	}
	require.Error(t, setQuantizeVariant(4), "unknown variant")
	require.Error(t, setQuantizeVariant(0), "unknown variant")
}

// Variant 3 on shapes where every block loops several times over its share (thousands of
// rows: the grid is capped at the resident blocks), per group, per channel and per tensor,
// every dtype: the CPU's bits.
func TestQuantizeV3LargeMatchesCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(13)
	cases := []struct {
		s          quant.Scheme
		rows, cols int
		dt         tensor.DType
	}{
		{quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 128}, 3001, 4096, tensor.F16},
		{quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, 3001, 4096, tensor.F16},
		{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}, 1100, 4104, tensor.BF16},
		{quant.Scheme{Bits: 8, Granularity: quant.PerTensor}, 1500, 1032, tensor.F32},
		{quant.Scheme{Bits: 8, Granularity: quant.PerGroup, GroupSize: 8}, 700, 2048, tensor.F16},
	}
	withQuantizeVariant(t, g, 3, func() {
		for _, c := range cases {
			name := fmt.Sprintf("v3/%s/%dx%d/%s", c.s, c.rows, c.cols, c.dt)
			w := make([]float32, c.rows*c.cols)
			gs := testutil.Gaussian(r, len(w), 0.02)
			copy(w, gs)
			for i := 0; i < c.cols; i++ { // an all-zero row and a row of subnormal halves
				w[5*c.cols+i] = 0
				w[6*c.cols+i] = gs[i] * 1e-6
			}
			x := asDType(w, c.rows, c.cols, c.dt)
			t.Run(name, func(t *testing.T) { compareQuantOnly(t, g, name, x, c.s) })
		}
	})
}

// Variant 3 clears the non-finite flag itself on the default stream (no memset): a clean
// weight after a bad one quantizes without error, and a bad one after a clean one fails,
// each call reporting its own input.
func TestQuantizeV3FlagPerCall(t *testing.T) {
	g := gpu(t)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	rows, cols := 300, 512
	clean := make([]float32, rows*cols)
	for i := range clean {
		clean[i] = float32(i%251) - 125
	}
	bad := append([]float32(nil), clean...)
	bad[rows*cols-3] = float32(math.Inf(1)) // in the last block's share
	scales := make([]float32, rows)
	for i := range scales {
		scales[i] = 1
	}
	withQuantizeVariant(t, g, 3, func() {
		for i, isBad := range []bool{true, false, false, true, true, false} {
			w := clean
			if isBad {
				w = bad
			}
			_, err := g.Quantize("w", asDType(w, rows, cols, tensor.F16), s, scales, nil)
			if isBad {
				require.Error(t, err, "call %d (bad input)", i)
			} else {
				require.NoError(t, err, "call %d (clean input)", i)
			}
		}
	})
}
