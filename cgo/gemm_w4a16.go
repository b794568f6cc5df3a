//go:build cuda

package cgo

import (
	"fmt"

	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// The W4A16 methods of GEMM. The weight is packed on the host for each call, so either
// layout is at hand and the dispatch is OpW4A16's (the strip kernel is a candidate there).

// GemmW4A16 packs w and runs the W4A16 kernel the dispatch picks on a converted to F16.
func (g *GEMM) GemmW4A16(a []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	p, err := layout.PackW4A16Tiled(w)
	if err != nil {
		return nil, fmt.Errorf("cuda gemm %w", err)
	}
	return g.GemmPackedW4A16(a, M, p, bias)
}

// GemmPackedW4A16 runs the kernel the dispatch (OpW4A16, W4A16KernelFor) picks for M on a
// weight packed in the tiled layout (repacked to the strip layout when the strip kernel runs).
func (g *GEMM) GemmPackedW4A16(a []float32, M int, p *layout.PackedW4A16Tiled, bias []float32) ([]float32, error) {
	return g.GemmPackedW4A16With(W4A16KernelFor(OpW4A16, M, p.N, p.K, p.Group), a, M, p, bias)
}

// GemmPackedW4A16With runs W4A16 kernel k (any of Kernels(OpW4A16); Strip after repacking)
// on a weight in the tiled layout; a kernel that does not take the shape is an error.
func (g *GEMM) GemmPackedW4A16With(k Kernel, a []float32, M int, p *layout.PackedW4A16Tiled, bias []float32) ([]float32, error) {
	N, K := p.N, p.K
	if M < 1 || len(a) != M*K || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w4a16: tensor %q: %d activations for %d tokens x %d inputs, %d bias values for %d outputs", p.Name, len(a), M, K, len(bias), N)
	}
	if k == Strip {
		ps, err := layout.RepackW4A16Strip(p)
		if err != nil {
			return nil, fmt.Errorf("cuda gemm %w", err)
		}
		return g.GemmPackedW4A16Strip(a, M, ps, bias)
	}
	if !knownKernel(OpW4A16, k) {
		return nil, fmt.Errorf("cuda gemm w4a16: tensor %q: unknown kernel %q (have %v)", p.Name, k, Kernels(OpW4A16))
	}
	if k != TiledLastBlock && k != TiledReduceKernel && !W4A16Fits(k, M, N, K, p.Group) {
		return nil, fmt.Errorf("cuda gemm w4a16: tensor %q: kernel %s does not take M=%d N=%d K=%d group %d", p.Name, k, M, N, K, p.Group)
	}
	return runOnDevice(g, p.Name, [][]byte{AsBytes(tensor.F32ToF16Slice(a)), p.Data, AsBytes(p.Scales), AsBytes(p.Zeros), AsBytes(bias)}, 2*M*N,
		func(in []*Buffer, out *Buffer) error {
			var scratch *Buffer
			if n := W4A16ScratchBytes(k, N, K); n > 0 {
				var err error
				if scratch, err = Alloc(g.dev, n); err != nil {
					return err
				}
				defer scratch.Close()
			}
			w := W4A16Weight{Data: in[1], Scales: in[2], Zeros: in[3], N: N, K: K, Group: p.Group}
			return W4A16Dev(k, in[0], w, in[4], out, M, g.ws, scratch)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

// GemmPackedW4A16Strip runs the strip kernel on a weight in the strip layout.
func (g *GEMM) GemmPackedW4A16Strip(a []float32, M int, p *layout.PackedW4A16Strip, bias []float32) ([]float32, error) {
	N, K := p.N, p.K
	if M < 1 || len(a) != M*K || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w4a16 strip: tensor %q: %d activations for %d tokens x %d inputs, %d bias values for %d outputs", p.Name, len(a), M, K, len(bias), N)
	}
	if p.Group <= 0 || len(p.Data) != N*p.KPad/2 || len(p.Scales) != N*(K/p.Group) || (p.Asym && len(p.Zeros) != len(p.Scales)) {
		return nil, fmt.Errorf("cuda gemm w4a16 strip: tensor %q: packed buffers have wrong sizes (data %d bytes, %d scales for [%d, %d] padded to %d, group %d)", p.Name, len(p.Data), len(p.Scales), N, K, p.KPad, p.Group)
	}
	return runOnDevice(g, p.Name, [][]byte{AsBytes(tensor.F32ToF16Slice(a)), p.Data, AsBytes(p.Scales), AsBytes(p.Zeros), AsBytes(bias)}, 2*M*N,
		func(in []*Buffer, out *Buffer) error {
			return GemmW4A16StripDev(in[0], in[1], in[2], in[3], in[4], out, M, N, K, p.Group)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}
