package cgo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The table: W8A8 reduces split-K in a separate kernel for M = 17..511 only (H100 run 2);
// W4A16 (round 2, issue 18, not yet measured) runs the swapped stripe kernel up to M = 16,
// the mma stripe kernel to M = 255 and dequantize + cuBLAS above, for resident tiled weights
// and per-call packing alike.
func TestDispatchTable(t *testing.T) {
	want := map[Op]map[int]Kernel{
		OpW8A8: {1: TiledLastBlock, 16: TiledLastBlock, 17: TiledReduceKernel, 128: TiledReduceKernel,
			511: TiledReduceKernel, 512: TiledLastBlock, 4096: TiledLastBlock},
		OpW4A16:      {1: SwappedStripes, 16: SwappedStripes, 17: MMAStripes, 128: MMAStripes, 255: MMAStripes, 256: DequantCublas, 4096: DequantCublas},
		OpW4A16Tiled: {1: SwappedStripes, 16: SwappedStripes, 17: MMAStripes, 255: MMAStripes, 256: DequantCublas},
		OpQuantize:   {0: QuantizePersistent},
		OpHistogram:  {0: HistogramOnePass},
	}
	for op, byM := range want {
		for M, k := range byM {
			require.Equal(t, k, KernelFor(op, M), "%s at M=%d", op, M)
		}
	}
	require.Equal(t, []Kernel{QuantizePersistent, QuantizeRows, QuantizeBytes, QuantizeBatchedRows}, Kernels(OpQuantize))
	require.Equal(t, []Kernel{TiledLastBlock, TiledReduceKernel, WgmmaTMA}, Kernels(OpW8A8), "each kernel once, candidates last")
	require.Equal(t, []Kernel{SwappedStripes, MMAStripes, DequantCublas, Strip, TiledLastBlock, TiledReduceKernel}, Kernels(OpW4A16))
	require.Equal(t, []Kernel{HistogramOnePass, HistogramTwoPass, HistogramOnePassWarpAgg}, Kernels(OpHistogram))
}

// Every op's last route takes any M, so KernelFor never runs out of routes, and the routes
// of a GEMM op are in increasing M. Candidates are not routes, and a fallback takes every
// weight of its op.
func TestDispatchRoutesCoverEveryM(t *testing.T) {
	for op, routes := range Table {
		require.NotEmpty(t, routes, op)
		require.Equal(t, AnyM, routes[len(routes)-1].MaxM, "%s: the last route takes every M", op)
		for i := 1; i < len(routes); i++ {
			require.LessOrEqual(t, routes[i-1].MaxM, routes[i].MaxM, "%s route %d", op, i)
		}
		for _, c := range Candidates[op] {
			for _, r := range routes {
				require.NotEqual(t, r.Kernel, c, "%s: candidate %s has a route", op, c)
			}
		}
	}
	for op, fb := range Fallback {
		for _, sh := range [][4]int{{1, 64, 64, 32}, {300, 4096, 4160, 64}, {7, 128, 192, 96}} {
			require.True(t, W4A16Fits(fb, sh[0], sh[1], sh[2], sh[3]), "%s fallback %s at %v", op, fb, sh)
		}
	}
}

// firstFit takes the first route whose kernel fits, and says so when none does; candidates
// never run through it.
func TestDispatchFirstFit(t *testing.T) {
	k, err := firstFit(OpQuantize, 0, func(k Kernel) bool { return k != QuantizePersistent })
	require.NoError(t, err)
	require.Equal(t, QuantizeRows, k)
	k, err = firstFit(OpHistogram, 0, func(k Kernel) bool { return k == HistogramTwoPass })
	require.NoError(t, err)
	require.Equal(t, HistogramTwoPass, k)
	_, err = firstFit(OpQuantize, 0, func(Kernel) bool { return false })
	require.ErrorContains(t, err, "no quantize kernel")
	_, err = firstFit(OpHistogram, 0, func(k Kernel) bool { return k == HistogramOnePassWarpAgg })
	require.Error(t, err, "a candidate is not a route")
	require.True(t, knownKernel(OpW4A16Tiled, TiledLastBlock))
	require.True(t, knownKernel(OpW8A8, WgmmaTMA))
	require.False(t, knownKernel(OpW8A8, Strip))
}

// The W4A16 fit rules, by hand: the tiled layout's shape for every kernel; the stripe
// kernels' units (256 inputs swapped, 64 mma) and groups; M <= 16 for the swapped kernel.
func TestW4A16Fits(t *testing.T) {
	cases := []struct {
		k              Kernel
		M, N, K, group int
		fits           bool
	}{
		{SwappedStripes, 1, 4096, 4096, 128, true},
		{SwappedStripes, 16, 4096, 11008, 128, true}, // 11008 = 43 x 256
		{SwappedStripes, 17, 4096, 4096, 128, false}, // M > 16
		{SwappedStripes, 1, 4096, 4160, 64, false},   // 4160 = 16.25 x 256
		{SwappedStripes, 1, 4096, 4096, 4096, true},  // per-channel: a multiple of 256
		{SwappedStripes, 1, 4096, 4608, 384, false},  // 384 neither divides nor is a multiple of 256
		{SwappedStripes, 1, 4096, 4096, 256, true},
		{MMAStripes, 17, 4096, 4096, 128, true},       // 128: a multiple of the 64-input unit
		{MMAStripes, 256, 4096, 4160, 64, true},       // K 65 x 64
		{MMAStripes, 128, 4096, 4096, 96, false},      // 96 does not divide 4096 anyway
		{MMAStripes, 128, 4096, 4032, 96, false},      // 96 > 64, not a multiple of 64
		{MMAStripes, 1 << 20, 4096, 4096, 128, false}, // 16384 x 16 tiles > 4096
		{DequantCublas, 4096, 4096, 4096, 128, true},
		{DequantCublas, 4096, 4096, 4096, 48, false}, // group not a multiple of 32
		{TiledReduceKernel, 3, 96, 128, 128, false},  // N % 64
		{Strip, 3, 128, 128, 32, true},
		{WgmmaTMA, 1, 128, 128, 32, false}, // not a W4A16 kernel
	}
	for _, c := range cases {
		require.Equal(t, c.fits, W4A16Fits(c.k, c.M, c.N, c.K, c.group), "%s M=%d N=%d K=%d group %d", c.k, c.M, c.N, c.K, c.group)
	}
	require.Equal(t, SwappedStripes, W4A16KernelFor(OpW4A16Tiled, 8, 4096, 4096, 128))
	require.Equal(t, TiledReduceKernel, W4A16KernelFor(OpW4A16Tiled, 8, 4096, 4160, 64), "K not a multiple of 256: fallback")
	require.Equal(t, DequantCublas, W4A16KernelFor(OpW4A16, 1024, 4096, 4096, 128))
}
