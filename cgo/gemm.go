//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

func init() {
	backend.RegisterCUDAGEMM(func(i int) (backend.GEMM, backend.GEMMTimer, error) {
		g, err := NewGEMM(i)
		if err != nil {
			return nil, nil, err
		}
		t, err := NewGEMMTimer(i)
		if err != nil {
			g.Close()
			return nil, nil, err
		}
		return g, t, nil
	})
}

// GEMM runs the quantized GEMM kernels of cuda/gemm_*.cu on one device through the host
// API of backend.GEMM: inputs are uploaded, outputs (F16 on the device) come back widened to
// float32. Calls are serialized (they share the split-K workspace).
type GEMM struct {
	dev int
	mu  sync.Mutex
	ws  *Buffer // split-K workspace, zeroed when (re)allocated; the kernels keep it zeroed
}

// NewGEMM checks device dev (sm_80 or newer) and returns its GEMM.
func NewGEMM(dev int) (*GEMM, error) {
	if err := CheckDevice(dev); err != nil {
		return nil, err
	}
	return &GEMM{dev: dev}, nil
}

// Info describes the device.
func (g *GEMM) Info() backend.DeviceInfo {
	info, err := DeviceInfo(g.dev)
	if err != nil {
		return backend.DeviceInfo{Kind: "cuda", Index: g.dev, Name: "unknown: " + err.Error()}
	}
	return info
}

// Close frees the workspace.
func (g *GEMM) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.ws.Close()
	g.ws = nil
	return err
}

// workspace returns a zeroed workspace of at least n bytes (nil when n == 0).
func ensureWorkspace(dev int, ws **Buffer, n int) (unsafe.Pointer, int, error) {
	if n == 0 {
		return nil, 0, nil
	}
	if *ws == nil || (*ws).Size() < n {
		if err := (*ws).Close(); err != nil {
			return nil, 0, err
		}
		*ws = nil
		b, err := Alloc(dev, n)
		if err != nil {
			return nil, 0, fmt.Errorf("split-K workspace: %w", err)
		}
		if err := b.Memset(0, n, 0); err != nil {
			b.Close()
			return nil, 0, err
		}
		*ws = b
	}
	return (*ws).Ptr(), (*ws).Size(), nil
}

// asBytes views a slice's memory as bytes.
func asBytes[T any](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

// uploads copies each host slice to a new device buffer; free them with closeAll.
func upload(dev int, srcs ...[]byte) ([]*Buffer, error) {
	bufs := make([]*Buffer, 0, len(srcs))
	for _, s := range srcs {
		n := len(s)
		if n == 0 {
			bufs = append(bufs, nil)
			continue
		}
		b, err := Alloc(dev, n)
		if err != nil {
			closeAll(bufs)
			return nil, err
		}
		bufs = append(bufs, b)
		if err := b.CopyFromHost(0, s); err != nil {
			closeAll(bufs)
			return nil, err
		}
	}
	return bufs, nil
}

func closeAll(bufs []*Buffer) {
	for _, b := range bufs {
		b.Close()
	}
}

// ptr is b's device address, or nil for a nil buffer (an absent optional input).
func ptr(b *Buffer) unsafe.Pointer {
	if b == nil {
		return nil
	}
	return b.Ptr()
}

// runOnDevice is the plumbing every kernel variant shares: it uploads srcs (an empty slice
// becomes a nil buffer), allocates a poisoned output of outBytes, makes the split-K
// workspace at least wsBytes() bytes (wsBytes nil: none), runs launch (a failure is reported
// as "tensor <name>: ...") and returns download(out); the buffers are freed after the
// download. The caller holds g.mu.
func runOnDevice[T any](g *GEMM, name string, srcs [][]byte, outBytes int, wsBytes func() int,
	launch func(in []*Buffer, out, wsp unsafe.Pointer, wsn int) C.int, download func(out *Buffer) (T, error)) (T, error) {
	var zero T
	bufs, err := upload(g.dev, srcs...)
	if err != nil {
		return zero, err
	}
	defer closeAll(bufs)
	out, err := allocPoisoned(g.dev, outBytes)
	if err != nil {
		return zero, err
	}
	defer out.Close()
	var wsp unsafe.Pointer
	var wsn int
	if wsBytes != nil {
		if wsp, wsn, err = ensureWorkspace(g.dev, &g.ws, wsBytes()); err != nil {
			return zero, err
		}
	}
	if err := call(func() C.int { return launch(bufs, out.Ptr(), wsp, wsn) }); err != nil {
		return zero, fmt.Errorf("tensor %q: %w", name, err)
	}
	return download(out)
}

// allocPoisoned allocates n bytes filled with 0xFF (NaN as F16, -1 as int32), so that an
// element the kernel failed to write shows up.
func allocPoisoned(dev, n int) (*Buffer, error) {
	b, err := Alloc(dev, n)
	if err != nil {
		return nil, err
	}
	if err := b.Memset(0, n, 0xFF); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func downloadF16(b *Buffer, n int) ([]float32, error) {
	h := make([]uint16, n)
	if err := b.CopyToHost(asBytes(h), 0); err != nil {
		return nil, err
	}
	return tensor.F16ToF32Slice(nil, h), nil
}

func toDevDType(x []float32, dt tensor.DType) ([]uint16, C.int, error) {
	switch dt {
	case tensor.F16:
		return tensor.F32ToF16Slice(x), C.AUTOQ_F16, nil
	case tensor.BF16:
		return tensor.F32ToBF16Slice(x), C.AUTOQ_BF16, nil
	}
	return nil, 0, fmt.Errorf("activation dtype %s: want F16 or BF16", dt)
}

// QuantizeActivationsPerToken runs autoq_act_quant_per_token on x converted to dt.
func (g *GEMM) QuantizeActivationsPerToken(x []float32, M, K int, dt tensor.DType) ([]int8, []float32, error) {
	if M < 1 || K < 1 || len(x) != M*K {
		return nil, nil, fmt.Errorf("cuda quantize activations: %d values for %d tokens x %d inputs", len(x), M, K)
	}
	h, cdt, err := toDevDType(x, dt)
	if err != nil {
		return nil, nil, fmt.Errorf("cuda quantize activations: %w", err)
	}
	bufs, err := upload(g.dev, asBytes(h))
	if err != nil {
		return nil, nil, err
	}
	defer closeAll(bufs)
	qb, err := allocPoisoned(g.dev, M*K)
	if err != nil {
		return nil, nil, err
	}
	defer qb.Close()
	sb, err := allocPoisoned(g.dev, 4*M)
	if err != nil {
		return nil, nil, err
	}
	defer sb.Close()
	if err := call(func() C.int {
		return C.autoq_act_quant_per_token(C.int(g.dev), bufs[0].Ptr(), cdt, C.int64_t(M), C.int64_t(K), (*C.int8_t)(qb.Ptr()), (*C.float)(sb.Ptr()), nil)
	}); err != nil {
		return nil, nil, err
	}
	q := make([]int8, M*K)
	s := make([]float32, M)
	if err := qb.CopyToHost(asBytes(q), 0); err != nil {
		return nil, nil, err
	}
	if err := sb.CopyToHost(asBytes(s), 0); err != nil {
		return nil, nil, err
	}
	return q, s, nil
}

// QuantizeActivationsStatic runs autoq_act_quant_static with scale amax/127 (1 when amax
// is not positive), the scale quant.QuantizeActivationsStatic uses.
func (g *GEMM) QuantizeActivationsStatic(x []float32, M, K int, dt tensor.DType, amax float32) ([]int8, float32, error) {
	if M < 1 || K < 1 || len(x) != M*K {
		return nil, 0, fmt.Errorf("cuda quantize activations: %d values for %d tokens x %d inputs", len(x), M, K)
	}
	scale := float32(1)
	if amax > 0 {
		scale = amax / 127
	}
	h, cdt, err := toDevDType(x, dt)
	if err != nil {
		return nil, 0, fmt.Errorf("cuda quantize activations: %w", err)
	}
	bufs, err := upload(g.dev, asBytes(h))
	if err != nil {
		return nil, 0, err
	}
	defer closeAll(bufs)
	qb, err := allocPoisoned(g.dev, M*K)
	if err != nil {
		return nil, 0, err
	}
	defer qb.Close()
	if err := call(func() C.int {
		return C.autoq_act_quant_static(C.int(g.dev), bufs[0].Ptr(), cdt, C.int64_t(M), C.int64_t(K), C.float(scale), (*C.int8_t)(qb.Ptr()), nil)
	}); err != nil {
		return nil, 0, err
	}
	q := make([]int8, M*K)
	if err := qb.CopyToHost(asBytes(q), 0); err != nil {
		return nil, 0, err
	}
	return q, scale, nil
}

func (g *GEMM) w8Inputs(op string, aq []int8, M int, w *quant.QTensor) ([]int8, []float32, error) {
	lv, sc, err := W8A8Weights(w)
	if err != nil {
		return nil, nil, fmt.Errorf("cuda %s: %w", op, err)
	}
	if M < 1 || len(aq) != M*w.Cols {
		return nil, nil, fmt.Errorf("cuda %s: tensor %q: %d activations for %d tokens x %d inputs", op, w.Name, len(aq), M, w.Cols)
	}
	return lv, sc, nil
}

// GemmI8 runs the debug entry point of the W8A8 kernel the dispatch picks (exact int32
// accumulators).
func (g *GEMM) GemmI8(aq []int8, M int, w *quant.QTensor) ([]int32, error) {
	return g.GemmI8Variant(w8a8VariantFor(M), aq, M, w)
}

// GemmI8Variant runs the debug entry point of W8A8 kernel variant v.
func (g *GEMM) GemmI8Variant(v W8A8Variant, aq []int8, M int, w *quant.QTensor) ([]int32, error) {
	lv, _, err := g.w8Inputs("gemm i8", aq, M, w)
	if err != nil {
		return nil, err
	}
	if !knownW8A8Variant(v) {
		return nil, fmt.Errorf("cuda gemm i8: tensor %q: unknown kernel variant %d", w.Name, v)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	N, K := w.Rows, w.Cols
	return runOnDevice(g, w.Name, [][]byte{asBytes(aq), asBytes(lv)}, 4*M*N,
		func() int { return w8a8WorkspaceBytesAny(v, g.dev, M, N, K) },
		func(in []*Buffer, out, wsp unsafe.Pointer, wsn int) C.int {
			return w8a8LaunchI32Any(v, g.dev, in[0].Ptr(), in[1].Ptr(), out, M, N, K, wsp, wsn)
		},
		func(out *Buffer) ([]int32, error) {
			res := make([]int32, M*N)
			if err := out.CopyToHost(asBytes(res), 0); err != nil {
				return nil, err
			}
			return res, nil
		})
}

// GemmW8A8 runs the W8A8 kernel the dispatch picks on w's stored int8 levels and
// per-channel scales.
func (g *GEMM) GemmW8A8(aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	return g.GemmW8A8Variant(w8a8VariantFor(M), aq, aScales, M, w, bias)
}

// GemmW8A8Variant runs W8A8 kernel variant v.
func (g *GEMM) GemmW8A8Variant(v W8A8Variant, aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	lv, sc, err := g.w8Inputs("gemm w8a8", aq, M, w)
	if err != nil {
		return nil, err
	}
	N, K := w.Rows, w.Cols
	if len(aScales) != M || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w8a8: tensor %q: %d activation scales for %d tokens, %d bias values for %d outputs", w.Name, len(aScales), M, len(bias), N)
	}
	if !knownW8A8Variant(v) {
		return nil, fmt.Errorf("cuda gemm w8a8: tensor %q: unknown kernel variant %d", w.Name, v)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return runOnDevice(g, w.Name, [][]byte{asBytes(aq), asBytes(aScales), asBytes(lv), asBytes(sc), asBytes(bias)}, 2*M*N,
		func() int { return w8a8WorkspaceBytesAny(v, g.dev, M, N, K) },
		func(in []*Buffer, out, wsp unsafe.Pointer, wsn int) C.int {
			return w8a8LaunchAny(v, g.dev, in[0].Ptr(), (*C.float)(in[1].Ptr()), in[2].Ptr(), (*C.float)(in[3].Ptr()), (*C.float)(ptr(in[4])),
				out, M, N, K, wsp, wsn)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

// GemmW4A16 packs w (PackW4A16) and runs autoq_gemm_w4a16 on a converted to F16.
func (g *GEMM) GemmW4A16(a []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	p, err := PackW4A16(w)
	if err != nil {
		return nil, fmt.Errorf("cuda gemm %w", err)
	}
	return g.GemmPackedW4A16(a, M, p, bias)
}

// GemmPackedW4A16 runs the W4A16 kernel the dispatch (gemm_dispatch.go) picks for M on an
// already packed weight.
func (g *GEMM) GemmPackedW4A16(a []float32, M int, p *PackedW4A16, bias []float32) ([]float32, error) {
	return g.GemmPackedW4A16Variant(w4a16VariantFor(M), a, M, p, bias)
}

// GemmPackedW4A16Variant runs W4A16 kernel variant v on an already packed weight.
func (g *GEMM) GemmPackedW4A16Variant(v W4A16Variant, a []float32, M int, p *PackedW4A16, bias []float32) ([]float32, error) {
	N, K := p.N, p.K
	if M < 1 || len(a) != M*K || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w4a16: tensor %q: %d activations for %d tokens x %d inputs, %d bias values for %d outputs", p.Name, len(a), M, K, len(bias), N)
	}
	if v == W4A16V3 {
		return g.gemmPackedW4A16AsV3(a, M, p, bias)
	}
	if v != W4A16V1 && v != W4A16V2 {
		return nil, fmt.Errorf("cuda gemm w4a16: tensor %q: unknown kernel variant %d", p.Name, v)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return runOnDevice(g, p.Name, [][]byte{asBytes(tensor.F32ToF16Slice(a)), p.Data, asBytes(p.Scales), asBytes(p.Zeros), asBytes(bias)}, 2*M*N,
		func() int { return w4a16WorkspaceBytes(v, g.dev, M, N, K) },
		func(in []*Buffer, out, wsp unsafe.Pointer, wsn int) C.int {
			return w4a16Launch(v, g.dev, in[0].Ptr(), in[1].Ptr(), in[2].Ptr(), ptr(in[3]), (*C.float)(ptr(in[4])),
				out, M, N, K, p.Group, wsp, wsn)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

// GemmF16 runs the cuBLAS FP16 baseline on a and w converted to F16.
func (g *GEMM) GemmF16(a []float32, M int, w []float32, N, K int) ([]float32, error) {
	if M < 1 || N < 1 || K < 1 || len(a) != M*K || len(w) != N*K {
		return nil, fmt.Errorf("cuda gemm f16: %d activations and %d weights for M=%d N=%d K=%d", len(a), len(w), M, N, K)
	}
	bufs, err := upload(g.dev, asBytes(tensor.F32ToF16Slice(a)), asBytes(tensor.F32ToF16Slice(w)))
	if err != nil {
		return nil, err
	}
	defer closeAll(bufs)
	out, err := allocPoisoned(g.dev, 2*M*N)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	if err := call(func() C.int {
		return C.autoq_gemm_f16_cublas(C.int(g.dev), bufs[0].Ptr(), bufs[1].Ptr(), out.Ptr(), C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
	}); err != nil {
		return nil, err
	}
	return downloadF16(out, M*N)
}

var _ backend.GEMM = (*GEMM)(nil)
