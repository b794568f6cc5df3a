//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// quantizeWith quantizes w with the CPU's max-search parameters using quantize kernel k on
// the device, and returns the levels and the non-finite flag; fits is false (and nothing
// runs) when k cannot take the call.
func quantizeWith(t *testing.T, g *Backend, k Kernel, w *tensor.Tensor, s quant.Scheme, scales []float32, zeros []int32) (data []byte, flag int32, fits bool) {
	t.Helper()
	rows, cols := w.Shape[0], w.Shape[1]
	wb, err := g.upload(w.Data)
	require.NoError(t, err)
	defer wb.Close()
	sb, err := g.upload(f32Bytes(scales))
	require.NoError(t, err)
	defer sb.Close()
	var zb *Buffer
	if !s.Symmetric {
		zb, err = g.upload(i32Bytes(zeros))
		require.NoError(t, err)
		defer zb.Close()
	}
	n := rows * qRowBytes(s.Bits, cols)
	out, err := g.bufs(n, 4)
	require.NoError(t, err)
	defer freeBuffers(out...)
	m := Matrix{Buf: wb, DType: w.DType, Rows: rows, Cols: cols}
	l, err := schemeLayout(s, rows, cols)
	require.NoError(t, err)
	if !quantizeFits(k, m, l, out[0]) {
		require.ErrorContains(t, QuantizeDevWith(k, m, s, sb, zb, out[0], out[1]), "cannot take this call")
		return nil, 0, false
	}
	require.NoError(t, QuantizeDevWith(k, m, s, sb, zb, out[0], out[1]))
	f, err := download[int32](out[1], 1)
	require.NoError(t, err)
	data, err = download[byte](out[0], n)
	require.NoError(t, err)
	return data, f[0], true
}

// Every quantize kernel gives the CPU reference's bits: every scheme and dtype, odd and
// vector-friendly shapes (1032 = 129 chunks: rows with an odd chunk count and a second
// grid-stride pass), adversarial values (huge, tiny, ties) from adversarialMatrix. The byte
// kernel takes every call; the others only aligned calls with multiples of 8.
func TestQuantizeKernelsMatchCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(11)
	for _, k := range Kernels(OpQuantize) {
		ran := 0
		for _, sc := range quantCases() {
			cols := append([]int{1032}, sc.cols...)
			for _, c := range cols {
				if sc.s.Granularity == quant.PerGroup && c%sc.s.GroupSize != 0 {
					continue
				}
				for _, rows := range []int{1, 9, 70} {
					for _, dt := range dtypes {
						name := fmt.Sprintf("%s/%s/%dx%d/%s", k, sc.s, rows, c, dt)
						w := asDType(adversarialMatrix(r, rows, c, dt), rows, c, dt)
						scales, zeros, err := cpu.SearchParams(name, w, sc.s, quant.SearchOptions{Method: quant.SearchMax})
						require.NoError(t, err)
						want, err := cpu.Quantize(name, w, sc.s, scales, zeros)
						require.NoError(t, err)
						got, flag, fits := quantizeWith(t, g, k, w, sc.s, scales, zeros)
						if k == QuantizeBytes {
							require.True(t, fits, "the byte kernel takes every call")
						}
						if !fits {
							continue
						}
						ran++
						require.Zero(t, flag, name)
						require.Empty(t, firstByteDiff(got, want.Data, len(want.Data)/max(want.Rows, 1)), "%s: quantized data", name)
					}
				}
			}
		}
		require.Greater(t, ran, 0, "kernel %s ran on some cases", k)
	}
}

// Each kernel flags NaN/Inf per call: a clean weight after a bad one gives 0, a bad one after
// a clean one 1 (the persistent kernel clears the flag itself, without a memset), with the
// bad value in the last block's share.
func TestQuantizeKernelsFlagPerCall(t *testing.T) {
	g := gpu(t)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	rows, cols := 300, 512
	clean := make([]float32, rows*cols)
	for i := range clean {
		clean[i] = float32(i%251) - 125
	}
	scales := make([]float32, rows)
	for i := range scales {
		scales[i] = 1
	}
	for _, k := range Kernels(OpQuantize) {
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			w := append([]float32(nil), clean...)
			w[rows*cols-3] = bad
			for i, isBad := range []bool{true, false, false, true, true, false} {
				x := clean
				if isBad {
					x = w
				}
				_, flag, fits := quantizeWith(t, g, k, asDType(x, rows, cols, tensor.F16), s, scales, nil)
				require.True(t, fits, "kernel %s", k)
				require.Equal(t, map[bool]int32{true: 1}[isBad], flag, "kernel %s value %v call %d", k, bad, i)
			}
		}
	}
}

// The dispatch runs the persistent kernel on aligned calls with multiples of 8, the byte
// kernel on the rest; Backend.Quantize with a NaN gives the CPU reference's error.
func TestQuantizeDispatch(t *testing.T) {
	g := gpu(t)
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}
	buf, err := Alloc(g.dev, 4096)
	require.NoError(t, err)
	defer buf.Close()
	q, err := Alloc(g.dev, 4096)
	require.NoError(t, err)
	defer q.Close()
	k, err := quantizeKernel(Matrix{Buf: buf, DType: tensor.F16, Rows: 4, Cols: 64}, s, q)
	require.NoError(t, err)
	require.Equal(t, QuantizePersistent, k)
	k, err = quantizeKernel(Matrix{Buf: buf, DType: tensor.F16, Rows: 4, Cols: 60}, s, q)
	require.NoError(t, err)
	require.Equal(t, QuantizeBytes, k, "cols not a multiple of 8")
	odd, err := buf.View(2, 1024)
	require.NoError(t, err)
	k, err = quantizeKernel(Matrix{Buf: odd, DType: tensor.F16, Rows: 4, Cols: 64}, s, q)
	require.NoError(t, err)
	require.Equal(t, QuantizeBytes, k, "unaligned input")
	// The other widths take the same routes (their chunks are stored byte by byte).
	for _, bits := range []int{3, 5, 6, 7} {
		sb := quant.Scheme{Bits: bits, Granularity: quant.PerGroup, GroupSize: 32}
		k, err = quantizeKernel(Matrix{Buf: buf, DType: tensor.F16, Rows: 4, Cols: 64}, sb, q)
		require.NoError(t, err)
		require.Equal(t, QuantizePersistent, k, "%s", sb)
		k, err = quantizeKernel(Matrix{Buf: buf, DType: tensor.F16, Rows: 4, Cols: 60}, sb.FitCols(60), q)
		require.NoError(t, err)
		require.Equal(t, QuantizeBytes, k, "%s: cols not a multiple of 8", sb)
	}

	w := make([]float32, 3*64)
	for i := range w {
		w[i] = float32(i) - 20
	}
	w[2*64+5] = float32(math.NaN())
	x := asDType(w, 3, 64, tensor.F16)
	s8 := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	_, wantErr := cpu.Quantize("bad", x, s8, []float32{1, 1, 1}, nil)
	_, gotErr := g.Quantize("bad", x, s8, []float32{1, 1, 1}, nil)
	require.Error(t, wantErr)
	require.EqualError(t, gotErr, wantErr.Error())
}

// The persistent kernel through Backend.Quantize on shapes where every block loops several
// times over its share (thousands of rows: the grid is capped at the resident blocks), per
// group, per channel and per tensor, every dtype: the CPU's bits.
func TestQuantizePersistentLargeMatchesCPU(t *testing.T) {
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
		// The other widths: chunks of 6, 5, 3 and 7 bytes stored byte by byte.
		{quant.Scheme{Bits: 6, Granularity: quant.PerGroup, GroupSize: 32}, 3001, 4096, tensor.F16},
		{quant.Scheme{Bits: 6, Symmetric: true, Granularity: quant.PerChannel}, 1100, 4104, tensor.BF16},
		{quant.Scheme{Bits: 5, Granularity: quant.PerGroup, GroupSize: 128}, 1500, 2048, tensor.F32},
		{quant.Scheme{Bits: 3, Granularity: quant.PerGroup, GroupSize: 32}, 3001, 4096, tensor.F16},
		{quant.Scheme{Bits: 3, Symmetric: true, Granularity: quant.PerTensor}, 700, 1032, tensor.F16},
		{quant.Scheme{Bits: 7, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 8}, 700, 2048, tensor.BF16},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%dx%d/%s", c.s, c.rows, c.cols, c.dt)
		w := make([]float32, c.rows*c.cols)
		gs := testutil.Gaussian(r, len(w), 0.02)
		copy(w, gs)
		for i := 0; i < c.cols; i++ { // an all-zero row and a row of subnormal halves
			w[5*c.cols+i] = 0
			w[6*c.cols+i] = gs[i] * 1e-6
		}
		x := asDType(w, c.rows, c.cols, c.dt)
		t.Run(name, func(t *testing.T) {
			sc, zp, err := cpu.SearchParams(name, x, c.s, quant.SearchOptions{Method: quant.SearchMax})
			require.NoError(t, err)
			want, err := cpu.Quantize(name, x, c.s, sc, zp)
			require.NoError(t, err)
			got, err := g.Quantize(name, x, c.s, sc, zp)
			require.NoError(t, err)
			rb := len(want.Data) / max(want.Rows, 1)
			require.Empty(t, firstByteDiff(got.Data, want.Data, rb), "quantized data")
		})
	}
}

// Several tensors of different shapes in one batched launch (more than the kernel's 32 jobs
// per launch, so two launches) give each tensor the CPU reference's bits, and the per-job flag
// marks exactly the tensors holding a NaN or Inf.
func TestQuantizeBatchMatchesCPU(t *testing.T) {
	g := gpu(t)
	r := testutil.Rand(19)
	for _, s := range []quant.Scheme{
		{Bits: 8, Symmetric: true, Granularity: quant.PerChannel},
		{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 5, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 64},
		{Bits: 3, Symmetric: false, Granularity: quant.PerTensor},
	} {
		t.Run(s.String(), func(t *testing.T) {
			const n = 37
			var jobs []QuantJob
			var want [][]byte
			var owned []*Buffer
			defer func() { freeBuffers(owned...) }()
			bad := map[int]bool{3: true, 33: true}
			for i := 0; i < n; i++ {
				rows, cols := 1+r.IntN(40), 64*(1+r.IntN(20))
				name := fmt.Sprintf("t%d", i)
				x := adversarialMatrix(r, rows, cols, tensor.F16)
				w := asDType(x, rows, cols, tensor.F16)
				scales, zeros, err := cpu.SearchParams(name, w, s, quant.SearchOptions{Method: quant.SearchMax})
				require.NoError(t, err)
				q, err := cpu.Quantize(name, w, s, scales, zeros)
				require.NoError(t, err)
				want = append(want, q.Data)
				if bad[i] {
					x[len(x)/2] = float32(math.Inf(-1))
					w = asDType(x, rows, cols, tensor.F16)
				}
				wb, err := g.upload(w.Data)
				require.NoError(t, err)
				sb, err := g.upload(f32Bytes(scales))
				require.NoError(t, err)
				owned = append(owned, wb, sb)
				var zb *Buffer
				if !s.Symmetric {
					zb, err = g.upload(i32Bytes(zeros))
					require.NoError(t, err)
					owned = append(owned, zb)
				}
				qb, err := Alloc(g.dev, len(q.Data))
				require.NoError(t, err)
				owned = append(owned, qb)
				jobs = append(jobs, QuantJob{M: Matrix{Buf: wb, DType: tensor.F16, Rows: rows, Cols: cols}, Scales: sb, Zeros: zb, Q: qb})
			}
			flags, err := Alloc(g.dev, 4*n)
			require.NoError(t, err)
			owned = append(owned, flags)
			require.NoError(t, QuantizeBatchDev(jobs, s, flags))
			fl, err := download[int32](flags, n)
			require.NoError(t, err)
			for i, j := range jobs {
				require.Equal(t, map[bool]int32{true: 1}[bad[i]], fl[i], "flag of job %d", i)
				if bad[i] {
					continue
				}
				got, err := download[byte](j.Q, len(want[i]))
				require.NoError(t, err)
				require.Empty(t, firstByteDiff(got, want[i], len(want[i])/j.M.Rows), "job %d (%dx%d)", i, j.M.Rows, j.M.Cols)
			}
		})
	}
}
