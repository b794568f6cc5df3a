//go:build cuda

package cgo

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/kernels/layout"
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
// float32. The plain methods run the kernel the dispatch table picks (dispatch.go); the
// *With methods run the one named. Calls are serialized (they share the split-K workspace).
type GEMM struct {
	dev int
	mu  sync.Mutex
	ws  *Workspace
}

// NewGEMM checks device dev (sm_80 or newer) and returns its GEMM.
func NewGEMM(dev int) (*GEMM, error) {
	if err := CheckDevice(dev); err != nil {
		return nil, err
	}
	return &GEMM{dev: dev, ws: NewWorkspace(dev)}, nil
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
	return g.ws.Close()
}

// AsBytes views a slice's memory as bytes (for Buffer.CopyFromHost / CopyToHost).
func AsBytes[T any](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

// upload copies each host slice to a new device buffer (an empty slice gives a nil buffer);
// free them with closeAll.
func upload(dev int, srcs ...[]byte) ([]*Buffer, error) {
	bufs := make([]*Buffer, 0, len(srcs))
	for _, s := range srcs {
		if len(s) == 0 {
			bufs = append(bufs, nil)
			continue
		}
		b, err := Alloc(dev, len(s))
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

// runOnDevice uploads srcs, allocates a poisoned output of outBytes, runs launch (a failure
// is reported as "tensor <name>: ...") and returns download(out); the buffers are freed
// after the download. It holds g.mu (the launches share g.ws).
func runOnDevice[T any](g *GEMM, name string, srcs [][]byte, outBytes int, launch func(in []*Buffer, out *Buffer) error,
	download func(out *Buffer) (T, error)) (T, error) {
	var zero T
	g.mu.Lock()
	defer g.mu.Unlock()
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
	if err := launch(bufs, out); err != nil {
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
	if err := b.CopyToHost(AsBytes(h), 0); err != nil {
		return nil, err
	}
	return tensor.F16ToF32Slice(nil, h), nil
}

func toDevDType(x []float32, dt tensor.DType) ([]uint16, error) {
	switch dt {
	case tensor.F16:
		return tensor.F32ToF16Slice(x), nil
	case tensor.BF16:
		return tensor.F32ToBF16Slice(x), nil
	}
	return nil, fmt.Errorf("activation dtype %s: want F16 or BF16", dt)
}

// QuantizeActivationsPerToken runs autoq_act_quant_per_token on x converted to dt.
func (g *GEMM) QuantizeActivationsPerToken(x []float32, M, K int, dt tensor.DType) ([]int8, []float32, error) {
	if M < 1 || K < 1 || len(x) != M*K {
		return nil, nil, fmt.Errorf("cuda quantize activations: %d values for %d tokens x %d inputs", len(x), M, K)
	}
	h, err := toDevDType(x, dt)
	if err != nil {
		return nil, nil, fmt.Errorf("cuda quantize activations: %w", err)
	}
	bufs, err := upload(g.dev, AsBytes(h))
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
	if err := ActQuantPerTokenDev(bufs[0], dt, M, K, qb, sb); err != nil {
		return nil, nil, err
	}
	q, err := download[int8](qb, M*K)
	if err != nil {
		return nil, nil, err
	}
	s, err := download[float32](sb, M)
	return q, s, err
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
	h, err := toDevDType(x, dt)
	if err != nil {
		return nil, 0, fmt.Errorf("cuda quantize activations: %w", err)
	}
	bufs, err := upload(g.dev, AsBytes(h))
	if err != nil {
		return nil, 0, err
	}
	defer closeAll(bufs)
	qb, err := allocPoisoned(g.dev, M*K)
	if err != nil {
		return nil, 0, err
	}
	defer qb.Close()
	if err := ActQuantStaticDev(bufs[0], dt, M, K, scale, qb); err != nil {
		return nil, 0, err
	}
	q, err := download[int8](qb, M*K)
	return q, scale, err
}

func (g *GEMM) w8Inputs(op string, aq []int8, M int, w *quant.QTensor, k Kernel) ([]int8, []float32, error) {
	lv, sc, err := layout.W8A8Weights(w)
	if err != nil {
		return nil, nil, fmt.Errorf("cuda %s: %w", op, err)
	}
	if M < 1 || len(aq) != M*w.Cols {
		return nil, nil, fmt.Errorf("cuda %s: tensor %q: %d activations for %d tokens x %d inputs", op, w.Name, len(aq), M, w.Cols)
	}
	if !knownKernel(OpW8A8, k) {
		return nil, nil, fmt.Errorf("cuda %s: tensor %q: unknown kernel %q (have %v)", op, w.Name, k, Kernels(OpW8A8))
	}
	return lv, sc, nil
}

// GemmI8 runs the debug entry point of the W8A8 kernel the dispatch picks (exact int32
// accumulators).
func (g *GEMM) GemmI8(aq []int8, M int, w *quant.QTensor) ([]int32, error) {
	return g.GemmI8With(KernelFor(OpW8A8, M), aq, M, w)
}

// GemmI8With runs the debug entry point of W8A8 kernel k.
func (g *GEMM) GemmI8With(k Kernel, aq []int8, M int, w *quant.QTensor) ([]int32, error) {
	lv, _, err := g.w8Inputs("gemm i8", aq, M, w, k)
	if err != nil {
		return nil, err
	}
	N, K := w.Rows, w.Cols
	return runOnDevice(g, w.Name, [][]byte{AsBytes(aq), AsBytes(lv)}, 4*M*N,
		func(in []*Buffer, out *Buffer) error { return GemmI8Dev(k, in[0], in[1], out, M, N, K, g.ws) },
		func(out *Buffer) ([]int32, error) { return download[int32](out, M*N) })
}

// GemmW8A8 runs the W8A8 kernel the dispatch picks on w's stored int8 levels and
// per-channel scales.
func (g *GEMM) GemmW8A8(aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	return g.GemmW8A8With(KernelFor(OpW8A8, M), aq, aScales, M, w, bias)
}

// GemmW8A8With runs W8A8 kernel k.
func (g *GEMM) GemmW8A8With(k Kernel, aq []int8, aScales []float32, M int, w *quant.QTensor, bias []float32) ([]float32, error) {
	lv, sc, err := g.w8Inputs("gemm w8a8", aq, M, w, k)
	if err != nil {
		return nil, err
	}
	N, K := w.Rows, w.Cols
	if len(aScales) != M || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w8a8: tensor %q: %d activation scales for %d tokens, %d bias values for %d outputs", w.Name, len(aScales), M, len(bias), N)
	}
	return runOnDevice(g, w.Name, [][]byte{AsBytes(aq), AsBytes(aScales), AsBytes(lv), AsBytes(sc), AsBytes(bias)}, 2*M*N,
		func(in []*Buffer, out *Buffer) error {
			return GemmW8A8Dev(k, in[0], in[1], in[2], in[3], in[4], out, M, N, K, g.ws)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

// GemmF16 runs the cuBLAS FP16 baseline on a and w converted to F16.
func (g *GEMM) GemmF16(a []float32, M int, w []float32, N, K int) ([]float32, error) {
	if M < 1 || N < 1 || K < 1 || len(a) != M*K || len(w) != N*K {
		return nil, fmt.Errorf("cuda gemm f16: %d activations and %d weights for M=%d N=%d K=%d", len(a), len(w), M, N, K)
	}
	return runOnDevice(g, "f16", [][]byte{AsBytes(tensor.F32ToF16Slice(a)), AsBytes(tensor.F32ToF16Slice(w))}, 2*M*N,
		func(in []*Buffer, out *Buffer) error { return GemmF16Dev(in[0], in[1], out, M, N, K) },
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

var _ backend.GEMM = (*GEMM)(nil)
