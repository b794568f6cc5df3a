//go:build cuda

package cgo

import (
	"fmt"
	"iter"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// gpu opens CUDA device 0 or skips the test, saying why.
func gpu(t *testing.T) *Backend {
	t.Helper()
	n, err := DeviceCount()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU test skipped", err)
	}
	b, err := Open(0)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	// Registered after the Close above, so it runs first (cleanups are LIFO).
	base := settledLeaks()
	t.Cleanup(func() {
		if n := settledLeaks() - base; n != 0 {
			t.Errorf("%d device buffers/streams/events were garbage collected without Close during this test", n)
		}
	})
	return b
}

// settledLeaks collects garbage, lets the finalizers run and returns the leak count.
func settledLeaks() int64 {
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return Leaks()
}

var cpu = backend.NewCPU()

// firstF32Diff returns a description of the first element where got and want differ in
// bits (sameZero: treat +0 and -0 as equal), or "".
func firstF32Diff(got, want []float32, cols int, sameZero bool) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	n := 0
	first := ""
	for i := range got {
		g, w := math.Float32bits(got[i]), math.Float32bits(want[i])
		if g == w || (sameZero && got[i] == 0 && want[i] == 0) {
			continue
		}
		if n == 0 {
			first = fmt.Sprintf("index %d (row %d, col %d): got %g (0x%08x), want %g (0x%08x)", i, i/max(cols, 1), i%max(cols, 1), got[i], g, want[i], w)
		}
		n++
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d differ; first at %s", n, len(got), first)
}

func firstI32Diff(got, want []int32) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("index %d: got %d, want %d", i, got[i], want[i])
		}
	}
	return ""
}

func firstByteDiff(got, want []byte, rowBytes int) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	n, first := 0, ""
	for i := range got {
		if got[i] != want[i] {
			if n == 0 {
				first = fmt.Sprintf("byte %d (row %d, byte %d of row): got 0x%02x, want 0x%02x", i, i/max(rowBytes, 1), i%max(rowBytes, 1), got[i], want[i])
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d bytes differ; first at %s", n, len(got), first)
}

// packW4A16Tiled packs w in the tiled W4A16 layout.
func packW4A16Tiled(t *testing.T, w *quant.QTensor) *layout.PackedW4A16Tiled {
	t.Helper()
	p, err := layout.PackW4A16Tiled(w)
	require.NoError(t, err)
	return p
}

// w4Case is one weight of a W4A16 kernel sweep: scheme sc quantized at shape s, the si-th of
// the sweep's shapes (the seeds derive from si).
type w4Case struct {
	sc w4TestScheme
	s  nk
	si int
	w  *quant.QTensor
}

// w4Cases yields the weights of a sweep over shapes: every scheme of w4TestSchemes at every
// shape whose K its group divides, quantized with seed seed0 + the shape's index.
func w4Cases(t *testing.T, shapes []nk, seed0 uint64) iter.Seq[w4Case] {
	return func(yield func(w4Case) bool) {
		for _, sc := range w4TestSchemes {
			for si, s := range shapes {
				if s.K%max(sc.s.GroupSize, 1) != 0 {
					continue
				}
				if !yield(w4Case{sc: sc, s: s, si: si, w: quantize4(t, s.N, s.K, sc.s, seed0+uint64(si))}) {
					return
				}
			}
		}
	}
}

// run is the subtest of kernel at M on c's weight, named prefix + scheme, M and shape: gemm's
// output on the activations and bias of w4a16Case (seeds aSeed0 + M + si, biasSeed0 + si),
// checked against quant.GemmW4A16 (checkW4A16). gemm gets the subtest's t for checks of its own.
func (c w4Case) run(t *testing.T, prefix, kernel string, M int, aSeed0, biasSeed0 uint64,
	gemm func(t *testing.T, a, bias []float32) ([]float32, error)) {
	t.Run(fmt.Sprintf("%s%s_M%d_N%d_K%d", prefix, c.sc.s, M, c.s.N, c.s.K), func(t *testing.T) {
		a, bias := w4a16Case(c.w, M, aSeed0+uint64(M+c.si), biasSeed0+uint64(c.si))
		got, err := gemm(t, a, bias)
		require.NoError(t, err)
		checkW4A16(t, kernel, a, M, c.w, bias, got)
	})
}

// w4SymCase is one input of a test that runs two W4A16 kernels (or one twice) on the same data:
// a 4-bit group-128 weight of either symmetry, packed tiled, and F16 activations [M, K].
type w4SymCase struct {
	sym bool
	M   int
	p   *layout.PackedW4A16Tiled
	a   []float32
}

// w4SymCases yields, symmetric first, an [N, K] weight (seed) of each symmetry and, for each
// of Ms, activations drawn with seed aSeed0 + M.
func w4SymCases(t *testing.T, N, K int, seed, aSeed0 uint64, Ms []int) iter.Seq[w4SymCase] {
	return func(yield func(w4SymCase) bool) {
		for _, sym := range []bool{true, false} {
			p := packW4A16Tiled(t, quantize4(t, N, K, quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: 128}, seed))
			for _, M := range Ms {
				if !yield(w4SymCase{sym: sym, M: M, p: p, a: f16Values(aSeed0+uint64(M), M*K, 1)}) {
					return
				}
			}
		}
	}
}

// requireRepeatable requires reps more calls of gemm to give the bits of its first output
// (cols: the output's row length, for the message); other, if not nil, runs once after the
// first call (other work sharing the workspace).
func requireRepeatable(t *testing.T, reps, cols int, what string, other func() error, gemm func() ([]float32, error)) {
	t.Helper()
	first, err := gemm()
	require.NoError(t, err)
	if other != nil {
		require.NoError(t, other())
	}
	for rep := 0; rep < reps; rep++ {
		got, err := gemm()
		require.NoError(t, err)
		require.Empty(t, firstF32Diff(got, first, cols, false), "%s: rep %d differs from the first run", what, rep)
	}
}
