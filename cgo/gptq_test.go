//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gptqInputs returns m tokens of k correlated inputs (a shared factor plus noise, input
// scales spread over a decade), the kind of activations GPTQ exploits.
func gptqInputs(r *rand.Rand, m, k int) []float32 {
	x := make([]float32, m*k)
	for t := 0; t < m; t++ {
		c := r.NormFloat64()
		for i := 0; i < k; i++ {
			x[t*k+i] = float32((0.7*c + r.NormFloat64()) * (0.2 + float64(i%10)/5))
		}
	}
	return x
}

func cpuHessian(t testing.TB, x []float32, m, k int) *gptq.Hessian {
	h, err := gptq.NewHessian(k)
	require.NoError(t, err)
	require.NoError(t, h.Add(x, m, k))
	return h
}

// gpuHessian accumulates x^T x on the device and returns it as a gptq.Hessian.
func gpuHessian(t testing.TB, x []float32, m, k int) *gptq.Hessian {
	xb, err := Alloc(0, 4*m*k)
	require.NoError(t, err)
	defer xb.Close()
	hb, err := Alloc(0, 8*k*k)
	require.NoError(t, err)
	defer hb.Close()
	require.NoError(t, xb.CopyFromHost(0, f32Bytes(x)))
	require.NoError(t, hb.Memset(0, 8*k*k, 0))
	require.NoError(t, HessianAddDev(0, xb, m, k, hb))
	full := make([]float64, k*k)
	require.NoError(t, hb.CopyToHost(f64Bytes(full), 0))
	h, err := gptq.FromMatrix(k, int64(m), full)
	require.NoError(t, err)
	return h
}

// The GPU Hessian is x^T x in float64 like the CPU's; only the summation order differs.
func TestGPTQHessianAddDevMatchesCPU(t *testing.T) {
	gpu(t)
	const m, k = 300, 96
	x := gptqInputs(testutil.Rand(1), m, k)
	want, got := cpuHessian(t, x, m, k), gpuHessian(t, x, m, k)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			w, g := want.Sum[i*k+j], got.Sum[i*k+j]
			require.InDelta(t, w, g, 1e-12*(1+math.Abs(w)), "(%d, %d)", i, j)
		}
	}
}

// Tolerance: the in-block arithmetic repeats the CPU's operation for operation and the
// GPU uses the CPU's block size, so only the factor (cuSOLVER) and the batched (DGEMM)
// updates differ, by float64 rounding. A level can then differ only where a value sits within ~1e-15 of a rounding
// boundary: we require >= 99.9% identical levels, identical scales for all but 0.1% of
// groups, and output errors ||(W-Q)X||^2 within 1e-4 relative.
func TestGPTQGPUMatchesCPU(t *testing.T) {
	gpu(t)
	const rows, cols, tokens = 256, 512, 1024
	r := testutil.Rand(2)
	h := cpuHessian(t, gptqInputs(r, tokens, cols), tokens, cols)
	w := testutil.Gaussian(r, rows*cols, 0.02)
	cases := []struct {
		s    quant.Scheme
		clip gptq.Clip
	}{
		{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, gptq.ClipNone},
		{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}, gptq.ClipNone},
		{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 64}, gptq.ClipActMSE},
		{quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 256}, gptq.ClipMSE},
		{quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, gptq.ClipNone},
		{quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerTensor}, gptq.ClipNone},
		{quant.Scheme{Bits: 6, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}, gptq.ClipActMSE},
		{quant.Scheme{Bits: 5, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}, gptq.ClipNone},
		{quant.Scheme{Bits: 3, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}, gptq.ClipActMSE},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.s, c.clip), func(t *testing.T) {
			opt := gptq.Options{Clip: c.clip}
			p, err := gptq.Prepare("layer", w, rows, cols, c.s, h, opt)
			require.NoError(t, err)
			opt.BlockSize = GPTQBlockSize(p)
			t0 := time.Now()
			want, _, err := gptq.Quantize("layer", w, rows, cols, c.s, h, opt)
			require.NoError(t, err)
			cpuTime := time.Since(t0)
			t0 = time.Now()
			got, rep, err := GPTQQuantize(0, "layer", w, rows, cols, c.s, h, opt)
			require.NoError(t, err)
			gpuTime := time.Since(t0)
			require.False(t, rep.Fallback)
			wl, gl := want.Levels(), got.Levels()
			same := 0
			for i := range wl {
				if wl[i] == gl[i] {
					same++
				}
			}
			sameScales := 0
			for i := range want.Scales {
				if want.Scales[i] == got.Scales[i] {
					sameScales++
				}
			}
			ew := gptq.OutputError(w, quant.Dequantize(want), rows, cols, h)
			eg := gptq.OutputError(w, quant.Dequantize(got), rows, cols, h)
			t.Logf("levels identical %d/%d, scales %d/%d, output error cpu %.6g gpu %.6g; time cpu %v gpu %v",
				same, len(wl), sameScales, len(want.Scales), ew, eg, cpuTime, gpuTime)
			assert.GreaterOrEqual(t, float64(same), 0.999*float64(len(wl)))
			assert.GreaterOrEqual(t, float64(sameScales), 0.999*float64(len(want.Scales)))
			assert.InEpsilon(t, ew, eg, 1e-4)
		})
	}
}

// With H = I nothing is propagated: the GPU must give exactly round-to-nearest.
func TestGPTQGPUIdentityIsRTN(t *testing.T) {
	gpu(t)
	const rows, cols = 33, 256
	w := testutil.Gaussian(testutil.Rand(3), rows*cols, 1)
	id := make([]float64, cols*cols)
	for i := 0; i < cols; i++ {
		id[i*cols+i] = 1
	}
	h, err := gptq.FromMatrix(cols, 1, id)
	require.NoError(t, err)
	for _, s := range []quant.Scheme{
		{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
		{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 256},
		{Bits: 8, Symmetric: false, Granularity: quant.PerChannel},
	} {
		got, _, err := GPTQQuantize(0, "id", w, rows, cols, s, h, gptq.Options{})
		require.NoError(t, err)
		want, err := quant.Quantize("id", w, rows, cols, s, quant.SearchOptions{Method: quant.SearchMax})
		require.NoError(t, err)
		assert.Equal(t, want.Levels(), got.Levels(), "%s", s)
		assert.Equal(t, want.Scales, got.Scales, "%s", s)
	}
}

// An indefinite H stays indefinite at every damping: cuSOLVER reports it, the layer falls
// back to round-to-nearest with a warning naming it.
func TestGPTQGPUIndefiniteFallsBack(t *testing.T) {
	gpu(t)
	h, err := gptq.FromMatrix(2, 1, []float64{1, 1e5, 1e5, 1})
	require.NoError(t, err)
	s := quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}
	_, rep, err := GPTQQuantize(0, "blk.0.attn_q", []float32{0.3, -0.2, 0.11, 0.5}, 2, 2, s, h, gptq.Options{})
	require.NoError(t, err)
	assert.True(t, rep.Fallback)
	assert.Contains(t, rep.Warning, "blk.0.attn_q")
	_, _, err = GPTQQuantize(0, "l", []float32{0.3, -0.2, 0.11, 0.5}, 2, 2, s, h, gptq.Options{ActOrder: true})
	assert.ErrorContains(t, err, "act-order")
}

// TestGPTQ7B times GPTQ (w4 g128 symmetric) on the seven matrices of ONE Llama-2-7B decoder
// layer (q, k, v, o: 4096x4096; gate, up: 11008x4096; down: 4096x11008) with synthetic
// Hessians from 2048 random correlated tokens, and extrapolates x32 to the whole model.
// The time is printed, not asserted. Each matrix is factored separately (q/k/v could
// share one factor), and host-side preparation (H copies, uploads) is included.
func TestGPTQ7B(t *testing.T) {
	gpu(t)
	if testing.Short() {
		t.Skip("7B timing skipped in -short mode")
	}
	const tokens = 2048
	r := testutil.Rand(4)
	hs := map[int]*gptq.Hessian{}
	for _, k := range []int{4096, 11008} {
		t0 := time.Now()
		hs[k] = gpuHessian(t, gptqInputs(r, tokens, k), tokens, k)
		t.Logf("synthetic H for K=%d (%d tokens) on the GPU in %v", k, tokens, time.Since(t0))
	}
	shapes := []struct {
		name       string
		rows, cols int
	}{
		{"q_proj", 4096, 4096}, {"k_proj", 4096, 4096}, {"v_proj", 4096, 4096}, {"o_proj", 4096, 4096},
		{"gate_proj", 11008, 4096}, {"up_proj", 11008, 4096}, {"down_proj", 4096, 11008},
	}
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}
	var total time.Duration
	for _, sh := range shapes {
		w := testutil.Gaussian(r, sh.rows*sh.cols, 0.02)
		t0 := time.Now()
		q, rep, err := GPTQQuantize(0, sh.name, w, sh.rows, sh.cols, s, hs[sh.cols], gptq.Options{})
		dt := time.Since(t0)
		require.NoError(t, err)
		require.False(t, rep.Fallback)
		require.Equal(t, sh.rows, q.Rows)
		total += dt
		t.Logf("%-9s %5dx%-5d %v (damp %g)", sh.name, sh.rows, sh.cols, dt, rep.Damp)
	}
	t.Logf("one 7B layer: %v; 32 layers (extrapolated x32): %v", total, 32*total)
	fmt.Printf("GPTQ7B: one Llama-2-7B layer (7 matrices, w4g128) %v, 32 layers extrapolated %v\n", total, 32*total)
}
