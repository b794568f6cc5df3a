//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
)

// CUDA kernel names as `autoq bench gemm` reports them, the cuBLAS baseline first.
const (
	KernelCublasF16 = "cublas-f16"
	KernelW8A8      = "w8a8"
	KernelW8A8AQ    = "w8a8+aq"
	// KernelW8A8V2 is W8A8 variant 2 (gemm_w8a8_v2.cu; at M > 16 it runs variant 1), GEMM only.
	KernelW8A8V2 = "w8a8-v2"
	KernelW4G128 = "w4a16-g128"
	// KernelW4G128V2 is W4A16 variant 2 (gemm_w4a16_v2.cu; at M > 16 it runs variant 1).
	KernelW4G128V2 = "w4a16-g128-v2"
	// KernelW8A8V3 is W8A8 variant 3 (gemm_w8a8_v3.cu: one launch, no workspace; above
	// M = 16 it runs 16-row chunks that re-read the weights), GEMM only.
	KernelW8A8V3 = "w8a8-v3"
	// KernelW4G128V3 is W4A16 variant 3 (gemm_w4a16_v3.cu, same chunking above M = 16).
	KernelW4G128V3 = "w4a16-g128-v3"
)

const benchGroup = 128

// GEMMTimer times the GEMM kernels on device-resident random inputs (generated on the
// device, so preparing a 70B-sized weight costs no host work). Each kernel family rotates
// through enough weight copies that together exceed twice the L2 cache, so every timed
// call streams its weights from device memory as it would in a real forward pass.
type GEMMTimer struct {
	dev    int
	info   backend.DeviceInfo
	l2     int
	k, n   int
	maxM   int
	a      *Buffer // F16 [maxM, K]
	aq     *Buffer // int8 [maxM, K]
	aScale *Buffer // F32 [maxM]
	out    *Buffer // F16 [maxM, N]
	wF16   []*Buffer
	w8     []*Buffer
	w8s    *Buffer   // F32 [N]
	w4     []*Buffer // packed data, then F16 scales at w4ScaleOff
	w4Off  int
	ws     *Buffer
	events []*Event
}

// NewGEMMTimer opens the timer of device dev.
func NewGEMMTimer(dev int) (*GEMMTimer, error) {
	if err := CheckDevice(dev); err != nil {
		return nil, err
	}
	info, err := DeviceInfo(dev)
	if err != nil {
		return nil, err
	}
	var ci C.autoq_device_info
	if err := call(func() C.int { return C.autoq_device_get_info(C.int(dev), &ci) }); err != nil {
		return nil, err
	}
	l2 := int(ci.l2_bytes)
	if l2 <= 0 {
		l2 = 64 << 20
	}
	return &GEMMTimer{dev: dev, info: info, l2: l2}, nil
}

// Info describes the device.
func (t *GEMMTimer) Info() backend.DeviceInfo { return t.info }

// Kernels lists the timed kernels, the cuBLAS FP16 baseline first.
func (t *GEMMTimer) Kernels() []string {
	return []string{KernelCublasF16, KernelW8A8, KernelW8A8AQ, KernelW8A8V2, KernelW8A8V3, KernelW4G128, KernelW4G128V2, KernelW4G128V3}
}

// Notes says how the timings are taken.
func (t *GEMMTimer) Notes() string {
	return fmt.Sprintf("CUDA events around each call on the default stream after untimed warm-up, the calls queued behind a spin kernel so they run back to back; L2 (%d MiB) defeated by rotating weight copies totalling > 2x L2; random inputs generated on the device", t.l2>>20)
}

func (t *GEMMTimer) release() {
	for _, b := range []*Buffer{t.a, t.aq, t.aScale, t.out, t.w8s} {
		b.Close()
	}
	closeAll(t.wF16)
	closeAll(t.w8)
	closeAll(t.w4)
	t.a, t.aq, t.aScale, t.out, t.w8s, t.wF16, t.w8, t.w4 = nil, nil, nil, nil, nil, nil, nil, nil
}

// Close frees everything.
func (t *GEMMTimer) Close() error {
	t.release()
	t.ws.Close()
	t.ws = nil
	for _, e := range t.events {
		e.Close()
	}
	t.events = nil
	return nil
}

func (t *GEMMTimer) fill(b *Buffer, off, n int, kind int, amp float32, seed uint64) error {
	return call(func() C.int {
		return C.autoq_gemm_fill_random(C.int(t.dev), b.At(off), C.int64_t(n), C.int(kind), C.float(amp), C.uint64_t(seed), nil)
	})
}

// copies is how many weight copies of bytes each exceed 2x L2 together, within budget.
func (t *GEMMTimer) copies(bytes int, budget uint64) int {
	c := 2*t.l2/bytes + 1
	if c > 64 {
		c = 64
	}
	for c > 1 && uint64(c*bytes) > budget {
		c--
	}
	return c
}

// Prepare allocates and fills the inputs of a K x N weight and up to maxM tokens.
func (t *GEMMTimer) Prepare(K, N, maxM int) error {
	t.release()
	if K%128 != 0 || N%64 != 0 || maxM < 1 {
		return fmt.Errorf("cuda gemm bench: shape K=%d N=%d: need K a multiple of 128 and N a multiple of 64", K, N)
	}
	t.k, t.n, t.maxM = K, N, maxM
	free, _, err := MemInfo(t.dev)
	if err != nil {
		return err
	}
	alloc := func(n int) (*Buffer, error) { return Alloc(t.dev, n) }
	var seed uint64 = 1
	mk := func(n, kind int, amp float32) (*Buffer, error) {
		b, err := alloc(n * map[int]int{0: 1, 1: 2, 2: 4, 3: 2}[kind])
		if err != nil {
			return nil, err
		}
		seed++
		return b, t.fill(b, 0, n, kind, amp, seed)
	}
	if t.a, err = mk(maxM*K, 1, 1); err != nil {
		return err
	}
	if t.aq, err = mk(maxM*K, 0, 0); err != nil {
		return err
	}
	if t.aScale, err = mk(maxM, 2, 0.01); err != nil {
		return err
	}
	if t.out, err = alloc(2 * maxM * N); err != nil {
		return err
	}
	if t.w8s, err = mk(N, 2, 1e-4); err != nil {
		return err
	}
	budget := free / 5 // per family: leaves room for the other families and the workspace
	for i, c := 0, t.copies(2*N*K, budget); i < c; i++ {
		b, err := mk(N*K, 1, 0.05)
		if err != nil {
			return err
		}
		t.wF16 = append(t.wF16, b)
	}
	for i, c := 0, t.copies(N*K, budget); i < c; i++ {
		b, err := mk(N*K, 0, 0)
		if err != nil {
			return err
		}
		t.w8 = append(t.w8, b)
	}
	t.w4Off = (N*K/2 + 255) / 256 * 256
	nScales := K / benchGroup * N
	for i, c := 0, t.copies(t.w4Off+2*nScales, budget); i < c; i++ {
		b, err := alloc(t.w4Off + 2*nScales)
		if err != nil {
			return err
		}
		t.w4 = append(t.w4, b)
		seed++
		if err := t.fill(b, 0, N*K/2, 0, 0, seed); err != nil {
			return err
		}
		if err := t.fill(b, t.w4Off, nScales, 3, 0.01, seed+1000); err != nil {
			return err
		}
	}
	return Synchronize(t.dev)
}

// Time runs kernel at M tokens: warmup untimed calls, then iters calls each between two
// events.
func (t *GEMMTimer) Time(kernel string, M, warmup, iters int) (backend.GEMMTiming, error) {
	if t.a == nil {
		return backend.GEMMTiming{}, fmt.Errorf("cuda gemm bench: Prepare was not called")
	}
	if M < 1 || M > t.maxM || iters < 1 {
		return backend.GEMMTiming{}, fmt.Errorf("cuda gemm bench: M=%d outside [1, %d] or iters=%d < 1", M, t.maxM, iters)
	}
	K, N, dev := t.k, t.n, C.int(t.dev)
	cM, cN, cK := C.int64_t(M), C.int64_t(N), C.int64_t(K)
	mk, nk, mn := int64(M*K), int64(N*K), int64(M*N)
	var launch func(i int) error
	var bytes int64
	switch kernel {
	case KernelCublasF16:
		bytes = 2 * (mk + nk + mn)
		launch = func(i int) error {
			w := t.wF16[i%len(t.wF16)]
			return call(func() C.int { return C.autoq_gemm_f16_cublas(dev, t.a.Ptr(), w.Ptr(), t.out.Ptr(), cM, cN, cK, nil) })
		}
	case KernelW8A8, KernelW8A8AQ, KernelW8A8V2, KernelW8A8V3:
		v := W8A8V1
		switch kernel {
		case KernelW8A8V2:
			v = W8A8V2
		case KernelW8A8V3:
			v = W8A8V3
		}
		wsp, wsn, err := ensureWorkspace(t.dev, &t.ws, w8a8WorkspaceBytesAny(v, t.dev, M, N, K))
		if err != nil {
			return backend.GEMMTiming{}, err
		}
		withAQ := kernel == KernelW8A8AQ
		bytes = mk + nk + 2*mn + 4*int64(M+N)
		if withAQ {
			bytes = 2*mk + nk + 2*mn + 4*int64(N)
		}
		launch = func(i int) error {
			w := t.w8[i%len(t.w8)]
			if withAQ {
				if err := call(func() C.int {
					return C.autoq_act_quant_per_token(dev, t.a.Ptr(), C.AUTOQ_F16, cM, cK, (*C.int8_t)(t.aq.Ptr()), (*C.float)(t.aScale.Ptr()), nil)
				}); err != nil {
					return err
				}
			}
			return call(func() C.int {
				return w8a8LaunchAny(v, t.dev, t.aq.Ptr(), (*C.float)(t.aScale.Ptr()), w.Ptr(), (*C.float)(t.w8s.Ptr()), nil, t.out.Ptr(), M, N, K, wsp, wsn)
			})
		}
	case KernelW4G128V3:
		// Random packed bytes and scales: the v3 layout has the same sizes (K % 128 == 0 here).
		bytes = nk/2 + 2*nk/benchGroup + 2*mk + 2*mn
		launch = func(i int) error {
			w := t.w4[i%len(t.w4)]
			return call(func() C.int {
				return w4a16V3Launch(t.dev, t.a.Ptr(), w.Ptr(), w.At(t.w4Off), nil, nil, t.out.Ptr(), M, N, K, benchGroup)
			})
		}
	case KernelW4G128, KernelW4G128V2:
		v := W4A16V1
		if kernel == KernelW4G128V2 {
			v = W4A16V2
		}
		wsp, wsn, err := ensureWorkspace(t.dev, &t.ws, w4a16WorkspaceBytes(v, t.dev, M, N, K))
		if err != nil {
			return backend.GEMMTiming{}, err
		}
		bytes = nk/2 + 2*nk/benchGroup + 2*mk + 2*mn
		launch = func(i int) error {
			w := t.w4[i%len(t.w4)]
			return call(func() C.int {
				return w4a16Launch(v, t.dev, t.a.Ptr(), w.Ptr(), w.At(t.w4Off), nil, nil, t.out.Ptr(), M, N, K, benchGroup, wsp, wsn)
			})
		}
	default:
		return backend.GEMMTiming{}, fmt.Errorf("cuda gemm bench: unknown kernel %q (have %v)", kernel, t.Kernels())
	}
	for len(t.events) < 2*iters {
		e, err := NewEvent(t.dev)
		if err != nil {
			return backend.GEMMTiming{}, err
		}
		t.events = append(t.events, e)
	}
	for i := 0; i < warmup; i++ {
		if err := launch(i); err != nil {
			return backend.GEMMTiming{}, err
		}
	}
	// Hold the GPU while the timed launches are queued (about 100 us of host work each at
	// most), so that they run back to back and the events time the kernels alone.
	spinNs := int64(iters) * 100_000
	if spinNs > 200_000_000 {
		spinNs = 200_000_000
	}
	if err := call(func() C.int { return C.autoq_gemm_spin(dev, C.int64_t(spinNs), nil) }); err != nil {
		return backend.GEMMTiming{}, err
	}
	for i := 0; i < iters; i++ {
		if err := t.events[2*i].Record(nil); err != nil {
			return backend.GEMMTiming{}, err
		}
		if err := launch(warmup + i); err != nil {
			return backend.GEMMTiming{}, err
		}
		if err := t.events[2*i+1].Record(nil); err != nil {
			return backend.GEMMTiming{}, err
		}
	}
	ms := make([]float64, iters)
	for i := range ms {
		v, err := ElapsedMs(t.events[2*i], t.events[2*i+1])
		if err != nil {
			return backend.GEMMTiming{}, fmt.Errorf("cuda gemm bench: %s M=%d K=%d N=%d: %w", kernel, M, K, N, err)
		}
		ms[i] = v
	}
	if err := Synchronize(t.dev); err != nil {
		return backend.GEMMTiming{}, fmt.Errorf("cuda gemm bench: %s M=%d K=%d N=%d: %w", kernel, M, K, N, err)
	}
	return backend.GEMMTiming{Ms: ms, Bytes: bytes}, nil
}

var _ backend.GEMMTimer = (*GEMMTimer)(nil)
