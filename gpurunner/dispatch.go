//go:build cuda

package gpurunner

// How the runner runs each linear layer at M tokens: every GEMM through package cgo's
// dispatch table (cgo.KernelFor for W8A8, cgo.W4A16KernelFor for the resident tiled W4A16
// weights, which falls back when the routed kernel does not take a shape), and the int8
// input of W8A8 layers quantized inside the RMSNorm / SwiGLU kernels that produce it
// (cgo.RMSNormQuantDev, cgo.SwiGLUQuantDev: bit for bit what a separate quantization gives).

import (
	"fmt"

	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/tensor"
)

func (l *devLinear) w4Weight() cgo.W4A16Weight {
	return cgo.W4A16Weight{Data: l.w4, Scales: l.w4s, Zeros: l.w4z, N: l.N, K: l.K, Group: l.group}
}

// kernelAt is the kernel layer l runs at M tokens ("" for the cuBLAS F16 path).
func (l *devLinear) kernelAt(M int) cgo.Kernel {
	switch l.kind {
	case kindW8A8:
		return cgo.KernelFor(cgo.OpW8A8, M)
	case kindW4A16:
		return cgo.W4A16KernelFor(cgo.OpW4A16Tiled, M, l.N, l.K, l.group)
	}
	return ""
}

// ensureScratch sizes the shared workspace (split-K and stripe counters and partials) and the
// F16 scratch of dequantize + cuBLAS (one weight at a time, reused by every layer) for M.
func (r *ModelRunner) ensureScratch(M int) error {
	need, scratch := 0, 0
	for _, ly := range r.layers {
		for _, l := range ly.lin {
			k := l.kernelAt(M)
			switch l.kind {
			case kindW8A8:
				need = max(need, cgo.W8A8WorkspaceBytes(r.dev, M, l.N, l.K))
			case kindW4A16:
				need = max(need, cgo.W4A16WorkspaceBytes(k, r.dev, M, l.N, l.K))
				scratch = max(scratch, cgo.W4A16ScratchBytes(k, l.N, l.K))
			}
		}
	}
	if _, _, err := r.ws.Ensure(need); err != nil {
		return fmt.Errorf("cuda model: %w", err)
	}
	if scratch > 0 && (r.scratch == nil || r.scratch.Size() < scratch) {
		if err := r.scratch.Close(); err != nil {
			return err
		}
		r.scratch = nil
		b, err := cgo.Alloc(r.dev, scratch)
		if err != nil {
			return fmt.Errorf("cuda model: dequantized-weight scratch: %w", err)
		}
		r.scratch = b
	}
	return nil
}

// linear runs one layer: in F16 [M, K] -> out F16 [M, N], with the kernel the dispatch
// table picks for M. A W8A8 layer quantizes its input unless r.aqOf says r.aq already holds
// in's levels (a fused producer, or the layer before on the same input).
func (r *ModelRunner) linear(l *devLinear, in, out *cgo.Buffer, M int) error {
	var err error
	switch l.kind {
	case kindW8A8:
		if r.aqOf != in {
			if err = cgo.ActQuantPerTokenDev(in, tensor.F16, M, l.K, r.aq, r.ascale); err == nil {
				r.aqOf = in
			}
		}
		if err == nil {
			err = cgo.GemmW8A8Dev(l.kernelAt(M), r.aq, r.ascale, l.w8, l.w8s, l.bias, out, M, l.N, l.K, r.ws)
		}
	case kindW4A16:
		err = cgo.W4A16Dev(l.kernelAt(M), in, l.w4Weight(), l.bias, out, M, r.ws, r.scratch)
	default:
		x := in
		if l.fakeAct {
			if err = cgo.FakeActQuantDev(r.dev, in, M, l.K, r.fake); err != nil {
				break
			}
			x = r.fake
		}
		err = cgo.GemmF16Dev(x, l.w16, out, M, l.N, l.K)
		if err == nil && l.bias != nil {
			err = cgo.BiasAddDev(r.dev, out, l.bias, M, l.N)
		}
	}
	if r.aqOf == out {
		r.aqOf = nil
	}
	if err != nil {
		return fmt.Errorf("cuda model: linear %s (%s, %s at M=%d): %w", l.name, l.label, l.kernelAt(M), M, err)
	}
	return nil
}

func anyW8A8(lins ...*devLinear) bool {
	for _, l := range lins {
		if l != nil && l.kind == kindW8A8 {
			return true
		}
	}
	return false
}

// rmsnorm writes out = RMSNorm(x) * w (F16), fused with the int8 quantization of out when a
// consumer is a W8A8 layer.
func (r *ModelRunner) rmsnorm(x, w *cgo.Buffer, M, D int, eps float32, out *cgo.Buffer, consumers ...*devLinear) error {
	r.aqOf = nil
	if !anyW8A8(consumers...) {
		return cgo.RMSNormDev(r.dev, x, w, M, D, eps, out)
	}
	if err := cgo.RMSNormQuantDev(r.dev, x, w, M, D, eps, out, r.aq, r.ascale); err != nil {
		return err
	}
	r.aqOf = out
	return nil
}

// swiglu writes gate = SwiGLU(gate, up) in place, fused with the int8 quantization of the
// result when its consumer is a W8A8 layer.
func (r *ModelRunner) swiglu(gate, up *cgo.Buffer, M, H int, consumer *devLinear) error {
	r.aqOf = nil
	if !anyW8A8(consumer) {
		return cgo.SwiGLUDev(r.dev, gate, up, gate, M*H)
	}
	if err := cgo.SwiGLUQuantDev(r.dev, gate, up, gate, M, H, r.aq, r.ascale); err != nil {
		return err
	}
	r.aqOf = gate
	return nil
}
