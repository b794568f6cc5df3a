package cgo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The table chosen from the H100 runs (docs/gpu-results.md): W8A8 reduces split-K in a
// separate kernel for M = 17..511 only; W4A16 runs the strip kernel up to M = 16 when it may
// repack, the tiled kernel's last-block reduction there on resident tiled weights, and the
// reduce kernel above.
func TestDispatchTable(t *testing.T) {
	want := map[Op]map[int]Kernel{
		OpW8A8: {1: TiledLastBlock, 16: TiledLastBlock, 17: TiledReduceKernel, 128: TiledReduceKernel,
			511: TiledReduceKernel, 512: TiledLastBlock, 4096: TiledLastBlock},
		OpW4A16:      {1: Strip, 8: Strip, 16: Strip, 17: TiledReduceKernel, 128: TiledReduceKernel, 4096: TiledReduceKernel},
		OpW4A16Tiled: {1: TiledLastBlock, 16: TiledLastBlock, 17: TiledReduceKernel, 4096: TiledReduceKernel},
		OpQuantize:   {0: QuantizePersistent},
		OpHistogram:  {0: HistogramOnePass},
	}
	for op, byM := range want {
		for M, k := range byM {
			require.Equal(t, k, KernelFor(op, M), "%s at M=%d", op, M)
		}
	}
	require.Equal(t, []Kernel{QuantizePersistent, QuantizeRows, QuantizeBytes}, Kernels(OpQuantize))
	require.Equal(t, []Kernel{TiledLastBlock, TiledReduceKernel}, Kernels(OpW8A8), "each kernel once")
}

// Every op's last route takes any M, so KernelFor never runs out of routes, and the routes
// of a GEMM op are in increasing M.
func TestDispatchRoutesCoverEveryM(t *testing.T) {
	for op, routes := range Table {
		require.NotEmpty(t, routes, op)
		require.Equal(t, AnyM, routes[len(routes)-1].MaxM, "%s: the last route takes every M", op)
		for i := 1; i < len(routes); i++ {
			require.LessOrEqual(t, routes[i-1].MaxM, routes[i].MaxM, "%s route %d", op, i)
		}
	}
}

// firstFit takes the first route whose kernel fits, and says so when none does.
func TestDispatchFirstFit(t *testing.T) {
	k, err := firstFit(OpQuantize, 0, func(k Kernel) bool { return k != QuantizePersistent })
	require.NoError(t, err)
	require.Equal(t, QuantizeRows, k)
	k, err = firstFit(OpHistogram, 0, func(k Kernel) bool { return k == HistogramTwoPass })
	require.NoError(t, err)
	require.Equal(t, HistogramTwoPass, k)
	_, err = firstFit(OpQuantize, 0, func(Kernel) bool { return false })
	require.ErrorContains(t, err, "no quantize kernel")
	require.True(t, knownKernel(OpW4A16Tiled, TiledLastBlock))
	require.False(t, knownKernel(OpW8A8, Strip))
}
