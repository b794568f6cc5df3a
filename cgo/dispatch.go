package cgo

import (
	"fmt"
	"math"
)

// The dispatch table: for each operation with more than one kernel, which kernel runs for
// which token count M (GEMMs) or which call (quantize, histogram). It is the one place that
// chooses a kernel: every C entry point runs exactly the kernel it names, the host API
// (GEMM, Backend), the model runner and the benchmarks all ask KernelFor / the routes below,
// and `autoq bench` times every kernel of an op by name beside the table's choice. Change a
// route only after a GPU run shows the other kernel faster (docs/gpu-results.md), and keep
// the measurement in the comment. No build tag: the table is tested on every machine.

// Op is an operation of the dispatch table.
type Op string

// Kernel names one kernel (variant) of an op, by its algorithm; `autoq bench` prints it.
type Kernel string

const (
	// OpW8A8 is the W8A8 GEMM (GEMM.GemmW8A8, GemmI8, the model runner's W8A8 layers):
	// cuda/gemm_w8a8.cu, one tiled kernel, its split-K partials added by either reduction.
	OpW8A8 Op = "w8a8"
	// OpW4A16 is the W4A16 GEMM on a weight packed for the call (GEMM.GemmW4A16): either
	// layout is available, so the strip kernel can run.
	OpW4A16 Op = "w4a16"
	// OpW4A16Tiled is the W4A16 GEMM on weights resident in the tiled layout (the model
	// runner packs its weights once, in that layout): tiled kernels only.
	OpW4A16Tiled Op = "w4a16-tiled-weights"
	// OpQuantize is the weight quantization (Backend.Quantize): the first kernel that fits.
	OpQuantize Op = "quantize"
	// OpHistogram is the calibration histogram (HistogramAdd, the runner's observers): the
	// first kernel that fits.
	OpHistogram Op = "histogram"
)

const (
	// TiledLastBlock: the tiled split-K GEMM (gemm_w8a8.cu, gemm_w4a16_tiled.cu) whose last
	// block of each tile adds the split-K partials (AUTOQ_SPLITK_LAST_BLOCK).
	TiledLastBlock Kernel = "tiled-lastblock"
	// TiledReduceKernel: the same kernel, the partials added by a separate grid-wide kernel
	// (AUTOQ_SPLITK_REDUCE_KERNEL). The same bits as TiledLastBlock.
	TiledReduceKernel Kernel = "tiled-reducekernel"
	// Strip: gemm_w4a16_strip.cu, small M, a block owns 16-32 columns and all of K, one
	// launch, weights in the strip layout (layout.PackW4A16Strip).
	Strip Kernel = "strip"
	// SwappedStripes: gemm_w4a16_swapped.cu, M <= 16: the weight as the MMA's A operand
	// (tokens on n = 8), persistent blocks over stripes of (64-column strip, 256-input chunk)
	// units, the tiled layout. MMAStripes: gemm_w4a16_mma.cu, M = 17..256: activations as A,
	// the same stripes over (64-row block, 256 columns, 64 inputs). DequantCublas:
	// gemm_w4a16_dequant.cu, the weight dequantized into an F16 scratch, then cuBLAS FP16.
	SwappedStripes Kernel = "swapped-stripes"
	MMAStripes     Kernel = "mma-stripes"
	DequantCublas  Kernel = "dequant-cublas"
	// WgmmaTMA: cuda/sm90a/gemm_w8a8_wgmma.cu, the sm_90a W8A8 kernel (TMA loads, wgmma,
	// the fused scale epilogue), built only with nvcc >= 12 (CMake option AUTOQ_SM90A) and
	// run only on compute capability 9.0.
	WgmmaTMA Kernel = "wgmma-tma"

	// QuantizePersistent, QuantizeRows, QuantizeBytes: AUTOQ_QUANTIZE_PERSISTENT, _ROWS,
	// _BYTES (quantize_persistent.cu, quantize.cu); the same bits.
	QuantizePersistent Kernel = "persistent"
	QuantizeRows       Kernel = "rows"
	QuantizeBytes      Kernel = "bytes"
	// QuantizeBatchedRows: quantize_batched.cu, several tensors per launch, a warp per row,
	// one scale load per group, the saturating conversion branch-free; the same bits.
	QuantizeBatchedRows Kernel = "batched-rows"

	// HistogramOnePass (histogram_onepass.cu: F16/BF16 inputs, 128 KB of shared memory per
	// block) and HistogramTwoPass (histogram_twopass.cu: any input); the same counts.
	HistogramOnePass Kernel = "one-pass"
	HistogramTwoPass Kernel = "two-pass"
	// HistogramOnePassWarpAgg: the one-pass kernel with warp-aggregated shared-memory
	// updates (lanes holding the same 16-bit pattern add once, __match_any_sync); the same
	// counts.
	HistogramOnePassWarpAgg Kernel = "one-pass-warpagg"
)

// AnyM is the MaxM of a route that takes every M.
const AnyM = math.MaxInt

// Route sends the calls with M <= MaxM (and not taken by an earlier route) to Kernel. For
// quantize and histogram, which have no M, the routes are tried in order and the first
// kernel that fits the call runs.
type Route struct {
	MaxM   int
	Kernel Kernel
}

// Table is the dispatch table. The numbers are speedups over cuBLAS FP16 on the llama2-7b
// shapes from docs/gpu-results.md (H100 SXM).
var Table = map[Op][]Route{
	// Run 2: at M = 128 the reduce kernel gives 0.75-1.08x against the last block's
	// 0.48-1.08x (the last block reads rows x 128 x S partials alone, serialised on L2
	// latency); at M <= 16 the last block wins (1.49x geomean, against 1.34x for the deleted
	// streaming kernel that ran there with the reduce kernel); the reduce kernel was only
	// measured with 128 x 256 tiles from M = 512 on, which lost (0.58-0.60x against
	// 0.68-0.70x at M = 1024), so the last block keeps M >= 512.
	OpW8A8: {{16, TiledLastBlock}, {511, TiledReduceKernel}, {AnyM, TiledLastBlock}},
	// Issue 18 (round 2, NOT YET MEASURED: docs/gpu-results.md "Round 2"): every W4A16 route
	// reads the tiled layout, so the model runner's resident weights reach all of them: the
	// swapped stripe kernel up to M = 16, the mma stripe kernel to M = 255, then dequantize +
	// cuBLAS FP16. What they replace, as measured in runs 2-6 (kept as candidates and timed
	// beside them by `autoq bench gemm`): the strip kernel 1.88-1.90x geomean at M <= 16
	// against 1.57x for the tiled kernel; above 16 the tiled kernel with the reduce kernel
	// (0.49-0.63x at M = 128, 0.36x at M = 1024). Revert a route if the next run shows the
	// kernel it replaced faster there.
	OpW4A16: {{16, SwappedStripes}, {255, MMAStripes}, {AnyM, DequantCublas}},
	// Weights resident in the tiled layout (the model runner): the same routes.
	OpW4A16Tiled: {{16, SwappedStripes}, {255, MMAStripes}, {AnyM, DequantCublas}},
	// Run 3: persistent 0.291 ms summed over the six 7B rows against 0.297 ms for rows (rows
	// led on 4096x4096 by 1-2 us); the rows kernel takes what the persistent one cannot
	// (over 2^34 values), the byte kernel any shape (unaligned, or cols not a multiple of 8).
	OpQuantize: {{AnyM, QuantizePersistent}, {AnyM, QuantizeRows}, {AnyM, QuantizeBytes}},
	// Run 3: 2^28 F16 values in 0.501 ms (one pass) against 0.690 ms (two passes). Batches
	// holding F32 tensors, and devices without 128 KB of shared memory per block (sm_86,
	// sm_89), take two passes.
	OpHistogram: {{AnyM, HistogramOnePass}, {AnyM, HistogramTwoPass}},
}

// Candidates are kernels that run by name beside the table's routes (`autoq bench` times
// them, the GPU tests check them) without a route: each waits for a GPU run that shows it
// faster somewhere (then it gets a route), or is what a route replaced.
var Candidates = map[Op][]Kernel{
	OpW8A8:       {WgmmaTMA},
	OpW4A16:      {Strip, TiledLastBlock, TiledReduceKernel},
	OpW4A16Tiled: {TiledLastBlock, TiledReduceKernel},
	OpQuantize:   {QuantizeBatchedRows},
	OpHistogram:  {HistogramOnePassWarpAgg},
}

// Fallback is the kernel that runs when the routed kernel does not fit the call (W4A16: a
// group or K the stripe kernels are not built for). It takes every shape its op takes.
var Fallback = map[Op]Kernel{OpW4A16: TiledReduceKernel, OpW4A16Tiled: TiledReduceKernel}

// KernelFor is the kernel Table gives op at M tokens (for quantize and histogram: the
// preferred kernel, before any fit check).
func KernelFor(op Op, M int) Kernel {
	for _, r := range Table[op] {
		if M <= r.MaxM {
			return r.Kernel
		}
	}
	panic(fmt.Sprintf("cgo: dispatch table has no route for %s at M=%d", op, M))
}

// firstFit is the first route's kernel (for M) that fits: quantize and histogram.
func firstFit(op Op, M int, fits func(Kernel) bool) (Kernel, error) {
	for _, r := range Table[op] {
		if M <= r.MaxM && fits(r.Kernel) {
			return r.Kernel, nil
		}
	}
	return "", fmt.Errorf("cuda: no %s kernel takes this call", op)
}

// Kernels lists every kernel op can run, the routes' first, then the candidates (the
// benchmarks time each).
func Kernels(op Op) []Kernel {
	var out []Kernel
	seen := map[Kernel]bool{}
	add := func(k Kernel) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, r := range Table[op] {
		add(r.Kernel)
	}
	for _, k := range Candidates[op] {
		add(k)
	}
	return out
}

// knownKernel reports whether op can run k.
func knownKernel(op Op, k Kernel) bool {
	for _, x := range Kernels(op) {
		if x == k {
			return true
		}
	}
	return false
}
