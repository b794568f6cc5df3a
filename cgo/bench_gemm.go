//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/tensor"
)

// The device side of `autoq bench gemm` (backend.GEMMTimer): random inputs generated on the
// device, launches of each kernel by name, CUDA events. The sweep (copies, warm-up, timed
// loop, bytes) is package bench's.

// CUDA kernel names as `autoq bench gemm` reports them, the cuBLAS baseline first. "w8a8",
// "w8a8+aq" and "w4a16-g128" run the kernel the dispatch table picks for M; the names with a
// bracket run one kernel whatever M (every kernel the table can pick, side by side).
const (
	KernelCublasF16 = "cublas-f16"
	KernelW8A8      = "w8a8"
	KernelW8A8AQ    = "w8a8+aq"
	KernelW4G128    = "w4a16-g128"
)

const benchGroup = 128

// gemmBenchKernel is one timed kernel: what it computes and, for the named ones, the kernel.
type gemmBenchKernel struct {
	backend.GEMMKernel
	kernel Kernel // "": the dispatch table's choice
}

func benchKernels() []gemmBenchKernel {
	k := func(name, op string, kern Kernel) gemmBenchKernel {
		if kern != "" {
			name += " [" + string(kern) + "]"
		}
		return gemmBenchKernel{backend.GEMMKernel{Name: name, Op: op, FloatBytes: 2}, kern}
	}
	out := []gemmBenchKernel{
		k(KernelCublasF16, backend.GEMMFloat, ""), k(KernelW8A8, backend.GEMMW8A8, ""),
		k(KernelW8A8AQ, backend.GEMMW8A8AQ, ""), k(KernelW4G128, backend.GEMMW4A16G128, ""),
	}
	for _, kern := range Kernels(OpW8A8) {
		out = append(out, k(KernelW8A8, backend.GEMMW8A8, kern))
	}
	seen := map[Kernel]bool{}
	for _, kern := range append(Kernels(OpW4A16), Kernels(OpW4A16Tiled)...) {
		if !seen[kern] {
			seen[kern] = true
			out = append(out, k(KernelW4G128, backend.GEMMW4A16G128, kern))
		}
	}
	return out
}

// GEMMTimer runs the GEMM kernels on device-resident random inputs (generated on the device,
// so preparing a 70B-sized weight costs no host work), rotating through weight copies.
type GEMMTimer struct {
	dev     int
	info    backend.DeviceInfo
	l2      int
	kernels []gemmBenchKernel
	k, n    int
	maxM    int
	a       *Buffer // F16 [maxM, K]
	aq      *Buffer // int8 [maxM, K]
	aScale  *Buffer // F32 [maxM]
	out     *Buffer // F16 [maxM, N]
	wF16    []*Buffer
	w8      []*Buffer
	w8s     *Buffer   // F32 [N]
	w4      []*Buffer // packed data (any layout: same size for K % 128 == 0)
	w4s     []*Buffer // views of the F16 scales after each packed weight
	scratch *Buffer   // F16 [N, K]: the dequantize + cuBLAS kernel's weight
	ws      *Workspace
	events  []*Event
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
	var ks []gemmBenchKernel
	for _, k := range benchKernels() {
		if k.kernel == WgmmaTMA && !W8A8WgmmaAvailable(dev) {
			continue // not built, or not an sm_90 device: no row
		}
		ks = append(ks, k)
	}
	return &GEMMTimer{dev: dev, info: info, l2: l2, kernels: ks, ws: NewWorkspace(dev)}, nil
}

// Applies reports whether kernel runs at M on the prepared shape (bench.GemmApplier): every
// kernel of the dispatch table's choice does; a W4A16 kernel named alone only where it takes
// the call (W4A16Fits: the swapped stripe kernel up to M = 16, the stripe kernels' K and
// group rules) and where it is meant to run (the strip kernel up to M = 16, the mma stripe
// kernel from M = 17, dequantize + cuBLAS from M = 128).
func (t *GEMMTimer) Applies(kernel string, M int) bool {
	for _, k := range t.kernels {
		if k.Name != kernel {
			continue
		}
		if k.kernel == "" || k.Op != backend.GEMMW4A16G128 {
			return true
		}
		switch k.kernel {
		case Strip:
			return M <= 16
		case MMAStripes:
			return M > 16 && W4A16Fits(k.kernel, M, t.n, t.k, benchGroup)
		case DequantCublas:
			return M >= 128
		}
		return W4A16Fits(k.kernel, M, t.n, t.k, benchGroup)
	}
	return false
}

// Info describes the device.
func (t *GEMMTimer) Info() backend.DeviceInfo { return t.info }

// Kernels lists the timed kernels, the cuBLAS FP16 baseline first.
func (t *GEMMTimer) Kernels() []backend.GEMMKernel {
	out := make([]backend.GEMMKernel, len(t.kernels))
	for i, k := range t.kernels {
		out[i] = k.GEMMKernel
	}
	return out
}

// Notes says how the timings are taken.
func (t *GEMMTimer) Notes() string {
	return "CUDA events around each call on the default stream after untimed warm-up, the calls queued behind a spin kernel so they run back to back; random inputs generated on the device"
}

// CacheBytes is the device's L2.
func (t *GEMMTimer) CacheBytes() int { return t.l2 }

// FreeBytes is the free device memory.
func (t *GEMMTimer) FreeBytes() (uint64, error) {
	free, _, err := MemInfo(t.dev)
	return free, err
}

func (t *GEMMTimer) release() {
	for _, b := range []*Buffer{t.a, t.aq, t.aScale, t.out, t.w8s, t.scratch} {
		b.Close()
	}
	t.scratch = nil
	closeAll(t.wF16)
	closeAll(t.w8)
	closeAll(t.w4)
	t.a, t.aq, t.aScale, t.out, t.w8s, t.wF16, t.w8, t.w4, t.w4s = nil, nil, nil, nil, nil, nil, nil, nil, nil
}

// Close frees everything.
func (t *GEMMTimer) Close() error {
	t.release()
	t.ws.Close()
	for _, e := range t.events {
		e.Close()
	}
	t.events = nil
	return nil
}

// Prepare allocates and fills the inputs of a K x N weight and up to maxM tokens, with
// copies(bytes) copies of each weight encoding.
func (t *GEMMTimer) Prepare(K, N, maxM int, copies func(int) int) error {
	t.release()
	if K%128 != 0 || N%64 != 0 || maxM < 1 {
		return fmt.Errorf("cuda gemm bench: shape K=%d N=%d: need K a multiple of 128 and N a multiple of 64", K, N)
	}
	t.k, t.n, t.maxM = K, N, maxM
	var seed uint64 = 1
	mk := func(n int, kind FillKind, amp float32) (*Buffer, error) {
		b, err := Alloc(t.dev, n*kind.ElemBytes())
		if err != nil {
			return nil, err
		}
		seed++
		return b, FillRandom(b, n, kind, amp, seed)
	}
	var err error
	if t.a, err = mk(maxM*K, FillF16Sym, 1); err != nil {
		return err
	}
	if t.aq, err = mk(maxM*K, FillBytes, 0); err != nil {
		return err
	}
	if t.aScale, err = mk(maxM, FillF32Pos, 0.01); err != nil {
		return err
	}
	if t.out, err = Alloc(t.dev, 2*maxM*N); err != nil {
		return err
	}
	if t.w8s, err = mk(N, FillF32Pos, 1e-4); err != nil {
		return err
	}
	if t.scratch, err = Alloc(t.dev, 2*N*K); err != nil {
		return err
	}
	for i, c := 0, copies(2*N*K); i < c; i++ {
		b, err := mk(N*K, FillF16Sym, 0.05)
		if err != nil {
			return err
		}
		t.wF16 = append(t.wF16, b)
	}
	for i, c := 0, copies(N*K); i < c; i++ {
		b, err := mk(N*K, FillBytes, 0)
		if err != nil {
			return err
		}
		t.w8 = append(t.w8, b)
	}
	off := (N*K/2 + 255) / 256 * 256
	nScales := K / benchGroup * N
	for i, c := 0, copies(off+2*nScales); i < c; i++ {
		b, err := Alloc(t.dev, off+2*nScales)
		if err != nil {
			return err
		}
		t.w4 = append(t.w4, b)
		s, err := b.View(off, 2*nScales)
		if err != nil {
			return err
		}
		t.w4s = append(t.w4s, s)
		seed++
		if err := FillRandom(b, N*K/2, FillBytes, 0, seed); err != nil {
			return err
		}
		if err := FillRandom(s, nScales, FillF16Pos, 0.01, seed+1000); err != nil {
			return err
		}
	}
	return Synchronize(t.dev)
}

// Launch runs kernel at M tokens on weight copy i (asynchronously).
func (t *GEMMTimer) Launch(kernel string, M, i int) error {
	if t.a == nil {
		return fmt.Errorf("cuda gemm bench: Prepare was not called")
	}
	if M < 1 || M > t.maxM {
		return fmt.Errorf("cuda gemm bench: M=%d outside [1, %d]", M, t.maxM)
	}
	var bk *gemmBenchKernel
	for j := range t.kernels {
		if t.kernels[j].Name == kernel {
			bk = &t.kernels[j]
		}
	}
	if bk == nil {
		return fmt.Errorf("cuda gemm bench: unknown kernel %q", kernel)
	}
	K, N := t.k, t.n
	switch bk.Op {
	case backend.GEMMFloat:
		return GemmF16Dev(t.a, t.wF16[i%len(t.wF16)], t.out, M, N, K)
	case backend.GEMMW8A8, backend.GEMMW8A8AQ:
		k := bk.kernel
		if k == "" {
			k = KernelFor(OpW8A8, M)
		}
		if bk.Op == backend.GEMMW8A8AQ {
			if err := ActQuantPerTokenDev(t.a, tensor.F16, M, K, t.aq, t.aScale); err != nil {
				return err
			}
		}
		return GemmW8A8Dev(k, t.aq, t.aScale, t.w8[i%len(t.w8)], t.w8s, nil, t.out, M, N, K, t.ws)
	}
	k := bk.kernel
	if k == "" {
		k = W4A16KernelFor(OpW4A16, M, N, K, benchGroup)
	}
	w, s := t.w4[i%len(t.w4)], t.w4s[i%len(t.w4s)]
	if k == Strip { // random bytes: the strip layout has the tiled layout's size here
		return GemmW4A16StripDev(t.a, w, s, nil, nil, t.out, M, N, K, benchGroup)
	}
	return W4A16Dev(k, t.a, W4A16Weight{Data: w, Scales: s, N: N, K: K, Group: benchGroup}, nil, t.out, M, t.ws, t.scratch)
}

// TimeEach records an event pair around each call of f after holding the device for
// holdNs (a spin kernel), so that the calls run back to back, and returns each call's time.
func (t *GEMMTimer) TimeEach(n int, holdNs int64, f func(i int) error) ([]float64, error) {
	for len(t.events) < 2*n {
		e, err := NewEvent(t.dev)
		if err != nil {
			return nil, err
		}
		t.events = append(t.events, e)
	}
	if err := Spin(t.dev, holdNs); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := t.events[2*i].Record(nil); err != nil {
			return nil, err
		}
		if err := f(i); err != nil {
			return nil, err
		}
		if err := t.events[2*i+1].Record(nil); err != nil {
			return nil, err
		}
	}
	ms := make([]float64, n)
	for i := range ms {
		v, err := ElapsedMs(t.events[2*i], t.events[2*i+1])
		if err != nil {
			return nil, err
		}
		ms[i] = v
	}
	return ms, Synchronize(t.dev)
}

var _ backend.GEMMTimer = (*GEMMTimer)(nil)
