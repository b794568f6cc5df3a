//go:build cuda

package cgo

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

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
