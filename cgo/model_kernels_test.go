//go:build cuda

package cgo

// GPU tests of the prefill kernels of cuda/model_*.cu, each against a float64 Go reference
// on random inputs (the whole runner is tested in model_runner_test.go).

import (
	"fmt"
	"math"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func modelDevice(t *testing.T) int {
	t.Helper()
	n, err := DeviceCount()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (count %d, %v): the model runner tests need a GPU", n, err)
	}
	if err := CheckDevice(0); err != nil {
		t.Skipf("CUDA device 0 cannot run the model kernels: %v", err)
	}
	return 0
}

func upF16(t *testing.T, dev int, v []float32) *Buffer {
	t.Helper()
	b, err := Alloc(dev, 2*len(v))
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, b.CopyFromHost(0, AsBytes(tensor.F32ToF16Slice(v))))
	return b
}

func upRaw[T any](t *testing.T, dev int, v []T) *Buffer {
	t.Helper()
	raw := AsBytes(v)
	b, err := Alloc(dev, max(len(raw), 16))
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, b.CopyFromHost(0, raw))
	return b
}

func downF16(t *testing.T, b *Buffer, n int) []float32 {
	t.Helper()
	v, err := downloadF16(b, n)
	require.NoError(t, err)
	return v
}

// closeF16 checks got against a float64 reference with tolerance atol + rtol*|want|,
// reporting the worst element and the first one out of tolerance.
func closeF16(t *testing.T, what string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	require.Len(t, got, len(want), what)
	worst, wi, bad, first := 0.0, 0, 0, -1
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if d > worst {
			worst, wi = d, i
		}
		if !(d <= atol+rtol*math.Abs(w)) {
			bad++
			if first < 0 {
				first = i
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d out of tolerance (atol %g, rtol %g); first at %d: got %g want %g; worst |diff| %g at %d", what, bad, len(want), atol, rtol, first, got[first], want[first], worst, wi)
	} else {
		t.Logf("%s: worst |diff| %.3g at %d", what, worst, wi)
	}
}

func TestModelRMSNormKernel(t *testing.T) {
	dev := modelDevice(t)
	M, D := 7, 300
	r := testutil.Rand(1)
	x := testutil.Gaussian(r, M*D, 3)
	w := testutil.Gaussian(r, D, 1)
	xb, wb := upRaw(t, dev, x), upRaw(t, dev, w)
	out, err := Alloc(dev, 2*M*D)
	require.NoError(t, err)
	defer out.Close()
	require.NoError(t, RMSNormDev(dev, xb, wb, M, D, 1e-5, out))
	want := make([]float64, M*D)
	for m := 0; m < M; m++ {
		ss := 0.0
		for i := 0; i < D; i++ {
			ss += float64(x[m*D+i]) * float64(x[m*D+i])
		}
		rs := 1 / math.Sqrt(ss/float64(D)+1e-5)
		for i := 0; i < D; i++ {
			want[m*D+i] = float64(w[i]) * float64(x[m*D+i]) * rs
		}
	}
	closeF16(t, "rmsnorm", downF16(t, out, M*D), want, 1e-4, 1e-3) // F16 output: 2^-11 relative
}

func TestModelRoPEKernel(t *testing.T) {
	dev := modelDevice(t)
	M, nq, nk, hd, npos := 9, 4, 2, 16, 12
	r := testutil.Rand(2)
	q := f16Values(3, M*nq*hd, 1)
	k := f16Values(4, M*nk*hd, 1)
	pos := make([]int32, M)
	for i := range pos {
		pos[i] = int32(r.IntN(npos))
	}
	half := hd / 2
	cos, sin := make([]float32, npos*half), make([]float32, npos*half)
	for p := 0; p < npos; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) / math.Pow(10000, float64(2*i)/float64(hd))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	qb, kb := upF16(t, dev, q), upF16(t, dev, k)
	require.NoError(t, RoPEDev(dev, qb, kb, upRaw(t, dev, pos), upRaw(t, dev, cos), upRaw(t, dev, sin), npos, M, nq, nk, hd))
	rot := func(v []float32, heads int) []float64 {
		out := make([]float64, len(v))
		for m := 0; m < M; m++ {
			a := float64(pos[m])
			for h := 0; h < heads; h++ {
				base := (m*heads + h) * hd
				for i := 0; i < half; i++ {
					th := a / math.Pow(10000, float64(2*i)/float64(hd))
					x, y := float64(v[base+i]), float64(v[base+i+half])
					out[base+i] = x*math.Cos(th) - y*math.Sin(th)
					out[base+i+half] = x*math.Sin(th) + y*math.Cos(th)
				}
			}
		}
		return out
	}
	closeF16(t, "rope q", downF16(t, qb, len(q)), rot(q, nq), 1e-3, 1e-3)
	closeF16(t, "rope k", downF16(t, kb, len(k)), rot(k, nk), 1e-3, 1e-3)
}

// attentionRef is causal GQA in float64 on the F16 values the kernel reads.
func attentionRef(q, k, v []float32, offsets []int, nq, nk, hd int) []float64 {
	D, KV := nq*hd, nk*hd
	out := make([]float64, len(q))
	for b := 0; b+1 < len(offsets); b++ {
		base, n := offsets[b], offsets[b+1]-offsets[b]
		for h := 0; h < nq; h++ {
			kvh := h / (nq / nk)
			for t := 0; t < n; t++ {
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					dot := 0.0
					for d := 0; d < hd; d++ {
						dot += float64(q[(base+t)*D+h*hd+d]) * float64(k[(base+s)*KV+kvh*hd+d])
					}
					sc[s] = dot / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[s])
				}
				sum := 0.0
				for s := range sc {
					sc[s] = math.Exp(sc[s] - mx)
					sum += sc[s]
				}
				for d := 0; d < hd; d++ {
					o := 0.0
					for s := range sc {
						o += sc[s] / sum * float64(v[(base+s)*KV+kvh*hd+d])
					}
					out[(base+t)*D+h*hd+d] = o
				}
			}
		}
	}
	return out
}

func TestModelAttentionKernel(t *testing.T) {
	dev := modelDevice(t)
	for _, c := range []struct {
		lens       []int
		nq, nk, hd int
	}{
		{[]int{1, 70, 33, 16}, 8, 4, 8}, // stories260K heads; tiles of 16 queries / 32 keys, ragged
		{[]int{130, 5}, 4, 1, 64},       // multi-query attention
		{[]int{40}, 2, 2, 256},          // largest head dim (dynamic shared memory > 48 KiB)
		{[]int{100, 100, 3}, 6, 2, 128},
	} {
		t.Run(fmt.Sprintf("lens%v_h%d_kv%d_hd%d", c.lens, c.nq, c.nk, c.hd), func(t *testing.T) {
			offsets := []int{0}
			maxLen := 0
			for _, l := range c.lens {
				offsets = append(offsets, offsets[len(offsets)-1]+l)
				maxLen = max(maxLen, l)
			}
			M := offsets[len(offsets)-1]
			q := f16Values(10, M*c.nq*c.hd, 1.5)
			k := f16Values(11, M*c.nk*c.hd, 1.5)
			v := f16Values(12, M*c.nk*c.hd, 1)
			off32 := make([]int32, len(offsets))
			for i, o := range offsets {
				off32[i] = int32(o)
			}
			out, err := allocPoisoned(dev, 2*M*c.nq*c.hd)
			require.NoError(t, err)
			defer out.Close()
			require.NoError(t, AttentionDev(dev, upF16(t, dev, q), upF16(t, dev, k), upF16(t, dev, v), upRaw(t, dev, off32),
				len(c.lens), maxLen, M, c.nq, c.nk, c.hd, out))
			// F16 output (2^-11 relative) of values |o| <= max|v| ~ 4; F32 softmax.
			closeF16(t, "attention", downF16(t, out, M*c.nq*c.hd), attentionRef(q, k, v, offsets, c.nq, c.nk, c.hd), 2e-3, 2e-3)
		})
	}
}

func TestModelSwiGLUAndFakeActQuantKernels(t *testing.T) {
	dev := modelDevice(t)
	M, K := 5, 172
	g, u := f16Values(20, M*K, 2), f16Values(21, M*K, 2)
	out, err := Alloc(dev, 2*M*K)
	require.NoError(t, err)
	defer out.Close()
	require.NoError(t, SwiGLUDev(dev, upF16(t, dev, g), upF16(t, dev, u), out, M*K))
	want := make([]float64, M*K)
	for i := range want {
		x := float64(g[i])
		want[i] = x / (1 + math.Exp(-x)) * float64(u[i])
	}
	closeF16(t, "swiglu", downF16(t, out, M*K), want, 1e-4, 1.5e-3)

	// Fake quantization: levels and scales are quant.QuantizeActivationsPerToken's on the
	// same F16 values, so the output is exactly f16(float32(q) * scale).
	x := f16Values(22, M*K, 3)
	require.NoError(t, FakeActQuantDev(dev, upF16(t, dev, x), M, K, out))
	lv, sc := quant.QuantizeActivationsPerToken(x, M, K)
	exact := make([]float32, M*K)
	for i := range exact {
		exact[i] = float32(lv[i]) * sc[i/K]
	}
	exact = tensor.F16ToF32Slice(nil, tensor.F32ToF16Slice(exact))
	assert.Empty(t, firstF32Diff(downF16(t, out, M*K), exact, K, true))
}

// The fused producers of a W8A8 layer's input equal the unfused pair bit for bit: RMSNorm
// (or SwiGLU) then ActQuantPerTokenDev on its F16 output, and both equal quant's per-token
// quantization of that output. Rows include an all-zero one (scale 1) and widths that are
// not multiples of the block size; SwiGLU also in place (out = gate), as the runner calls it.
func TestFusedActQuantMatchesUnfused(t *testing.T) {
	dev := modelDevice(t)
	for _, sh := range []struct{ M, D int }{{1, 64}, {7, 4096}, {33, 11008}, {5, 264}} {
		t.Run(fmt.Sprintf("M%d_D%d", sh.M, sh.D), func(t *testing.T) {
			M, D := sh.M, sh.D
			r := testutil.Rand(uint64(M*D + 3))
			x := testutil.StudentT(r, M*D, 3)
			if M > 1 {
				for i := 0; i < D; i++ {
					x[D+i] = 0
				}
			}
			w := testutil.Gaussian(r, D, 1)
			xb, wb := upRaw(t, dev, x), upRaw(t, dev, w)
			alloc := func(n int) *Buffer {
				b, err := Alloc(dev, n)
				require.NoError(t, err)
				t.Cleanup(func() { b.Close() })
				require.NoError(t, b.Memset(0, n, 0xa5))
				return b
			}
			check := func(what string, out1, q1, s1, out2, q2, s2 *Buffer) {
				f1, err := download[uint16](out1, M*D)
				require.NoError(t, err)
				f2, err := download[uint16](out2, M*D)
				require.NoError(t, err)
				require.Equal(t, f1, f2, "%s: F16 output", what)
				l1, err := download[int8](q1, M*D)
				require.NoError(t, err)
				l2, err := download[int8](q2, M*D)
				require.NoError(t, err)
				c1, err := download[float32](s1, M)
				require.NoError(t, err)
				c2, err := download[float32](s2, M)
				require.NoError(t, err)
				require.Equal(t, c2, c1, "%s: scales", what)
				require.Equal(t, l2, l1, "%s: levels", what)
				wq, ws := quant.QuantizeActivationsPerToken(tensor.F16ToF32Slice(nil, f1), M, D)
				require.Equal(t, ws, c1, "%s: scales vs quant", what)
				require.Equal(t, wq, l1, "%s: levels vs quant", what)
			}
			// RMSNorm.
			out1, q1, s1 := alloc(2*M*D), alloc(M*D), alloc(4*M)
			require.NoError(t, RMSNormQuantDev(dev, xb, wb, M, D, 1e-5, out1, q1, s1))
			out2, q2, s2 := alloc(2*M*D), alloc(M*D), alloc(4*M)
			require.NoError(t, RMSNormDev(dev, xb, wb, M, D, 1e-5, out2))
			if D%8 == 0 {
				require.NoError(t, ActQuantPerTokenDev(out2, tensor.F16, M, D, q2, s2))
				check("rmsnorm", out1, q1, s1, out2, q2, s2)
			}
			// SwiGLU, in place on a copy of gate as the runner runs it.
			g := testutil.Gaussian(r, M*D, 2)
			u := testutil.Gaussian(r, M*D, 2)
			gb1, gb2, ub := upF16(t, dev, g), upF16(t, dev, g), upF16(t, dev, u)
			q1, s1 = alloc(M*D), alloc(4*M)
			require.NoError(t, SwiGLUQuantDev(dev, gb1, ub, gb1, M, D, q1, s1))
			q2, s2 = alloc(M*D), alloc(4*M)
			require.NoError(t, SwiGLUDev(dev, gb2, ub, gb2, M*D))
			if D%8 == 0 {
				require.NoError(t, ActQuantPerTokenDev(gb2, tensor.F16, M, D, q2, s2))
				check("swiglu", gb1, q1, s1, gb2, q2, s2)
			}
		})
	}
}
