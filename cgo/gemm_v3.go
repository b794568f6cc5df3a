//go:build cuda

package cgo

// #include "autoq.h"
// #include "autoq_gemm.h"
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/autoq/autoq/tensor"
)

// Plumbing of the v3 small-M kernels (cuda/gemm_w4a16_v3.cu, cuda/gemm_w8a8_v3.cu): one
// launch per GEMM and no split-K workspace. The W8A8 helpers below take any variant, so the
// callers in gemm.go and gemm_bench.go route every variant through them.

// w8a8WorkspaceBytesAny is w8a8WorkspaceBytes extended to W8A8V3 (which needs none).
func w8a8WorkspaceBytesAny(v W8A8Variant, dev, M, N, K int) int {
	if v == W8A8V3 {
		return 0
	}
	return w8a8WorkspaceBytes(v, dev, M, N, K)
}

// w8a8LaunchAny is w8a8Launch extended to W8A8V3.
func w8a8LaunchAny(v W8A8Variant, dev int, a unsafe.Pointer, aScales *C.float, w unsafe.Pointer, wScales, bias *C.float, out unsafe.Pointer, M, N, K int, ws unsafe.Pointer, wsn int) C.int {
	if v == W8A8V3 {
		return C.autoq_gemm_w8a8_v3(C.int(dev), (*C.int8_t)(a), aScales, (*C.int8_t)(w), wScales, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
	}
	return w8a8Launch(v, dev, a, aScales, w, wScales, bias, out, M, N, K, ws, wsn)
}

// w8a8LaunchI32Any is w8a8LaunchI32 extended to W8A8V3.
func w8a8LaunchI32Any(v W8A8Variant, dev int, a, w, out unsafe.Pointer, M, N, K int, ws unsafe.Pointer, wsn int) C.int {
	if v == W8A8V3 {
		return C.autoq_gemm_w8a8_v3_i32(C.int(dev), (*C.int8_t)(a), (*C.int8_t)(w), (*C.int32_t)(out), C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
	}
	return w8a8LaunchI32(v, dev, a, w, out, M, N, K, ws, wsn)
}

// knownW8A8Variant reports whether v names a W8A8 kernel.
func knownW8A8Variant(v W8A8Variant) bool { return v == W8A8V1 || v == W8A8V2 || v == W8A8V3 }

// w4a16V3Launch runs autoq_gemm_w4a16_v3 on device pointers (zeros and bias may be nil).
func w4a16V3Launch(dev int, a, w, scales, zeros unsafe.Pointer, bias *C.float, out unsafe.Pointer, M, N, K, group int) C.int {
	return C.autoq_gemm_w4a16_v3(C.int(dev), a, w, scales, zeros, bias, out, C.int64_t(M), C.int64_t(N), C.int64_t(K), C.int64_t(group), nil)
}

// GemmPackedW4A16V3 runs the v3 W4A16 kernel on a weight in the v3 layout (PackW4A16V3).
func (g *GEMM) GemmPackedW4A16V3(a []float32, M int, p *PackedW4A16V3, bias []float32) ([]float32, error) {
	N, K := p.N, p.K
	if M < 1 || len(a) != M*K || (len(bias) != 0 && len(bias) != N) {
		return nil, fmt.Errorf("cuda gemm w4a16 v3: tensor %q: %d activations for %d tokens x %d inputs, %d bias values for %d outputs", p.Name, len(a), M, K, len(bias), N)
	}
	if p.Group <= 0 || len(p.Data) != N*p.KPad/2 || len(p.Scales) != N*(K/p.Group) || (p.Asym && len(p.Zeros) != len(p.Scales)) {
		return nil, fmt.Errorf("cuda gemm w4a16 v3: tensor %q: packed buffers have wrong sizes (data %d bytes, %d scales for [%d, %d] padded to %d, group %d)", p.Name, len(p.Data), len(p.Scales), N, K, p.KPad, p.Group)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return runOnDevice(g, p.Name, [][]byte{asBytes(tensor.F32ToF16Slice(a)), p.Data, asBytes(p.Scales), asBytes(p.Zeros), asBytes(bias)}, 2*M*N,
		nil, // no workspace: one launch, no split-K
		func(in []*Buffer, out, _ unsafe.Pointer, _ int) C.int {
			return w4a16V3Launch(g.dev, in[0].Ptr(), in[1].Ptr(), in[2].Ptr(), ptr(in[3]), (*C.float)(ptr(in[4])), out, M, N, K, p.Group)
		},
		func(out *Buffer) ([]float32, error) { return downloadF16(out, M*N) })
}

// gemmPackedW4A16AsV3 runs the v3 kernel on a weight in the v1/v2 layout by repacking it on
// the host first (the variant API of GemmPackedW4A16Variant; a model keeps its weights in the
// v3 layout instead).
func (g *GEMM) gemmPackedW4A16AsV3(a []float32, M int, p *PackedW4A16, bias []float32) ([]float32, error) {
	p3, err := RepackW4A16V3(p)
	if err != nil {
		return nil, fmt.Errorf("cuda gemm %w", err)
	}
	return g.GemmPackedW4A16V3(a, M, p3, bias)
}
