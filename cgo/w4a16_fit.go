package cgo

// Which W4A16 kernels take a weight (no build tag: the dispatch's fallback is tested on every
// machine). The rules mirror the kernels' own checks; the stripe kernels' half is
// w4_stripes_fit in cuda/gemm_w4a16_stripes.cuh, compared with this one by the host check
// (hostcheck_w4a16_test.go).

// Units of the stripe kernels: inputs per unit, and the largest tile and unit counts.
const (
	swappedUnitK = 256
	mmaUnitK     = 64
	maxW4Tiles   = 4096
	maxW4Units   = 1 << 20
)

// W4A16Fits reports whether W4A16 kernel k takes M tokens on an [N, K] weight with the given
// group (group = K for per-channel weights). Every W4A16 kernel needs the tiled layout's
// shape (N and K positive multiples of 64, a group that is a multiple of 32 dividing K);
// the stripe kernels also need K a multiple of their unit and a group they are instantiated
// for, and the swapped one M <= 16.
func W4A16Fits(k Kernel, M, N, K, group int) bool {
	if M < 1 || N < 64 || K < 64 || N%64 != 0 || K%64 != 0 || group < 32 || group%32 != 0 || K%group != 0 {
		return false
	}
	switch k {
	case TiledLastBlock, TiledReduceKernel, Strip, DequantCublas:
		return true
	case SwappedStripes, MMAStripes:
	default:
		return false
	}
	uk := mmaUnitK
	if k == SwappedStripes {
		uk = swappedUnitK
		if M > 16 {
			return false
		}
	}
	if K%uk != 0 || !(group <= uk && uk%group == 0 || group > uk && group%uk == 0) {
		return false
	}
	if M > 1<<30 || N > 1<<30 || K > 1<<30 {
		return false
	}
	tiles := N / 64
	if k == MMAStripes {
		bm := 64
		if M <= 32 {
			bm = 32
		}
		tiles = (M + bm - 1) / bm * ((N + 255) / 256)
	}
	return tiles <= maxW4Tiles && tiles*(K/uk) <= maxW4Units
}

// W4A16KernelFor is the W4A16 kernel op runs for M tokens on this weight: the table's
// route, or the op's Fallback when the routed kernel does not take the weight.
func W4A16KernelFor(op Op, M, N, K, group int) Kernel {
	k := KernelFor(op, M)
	if !W4A16Fits(k, M, N, K, group) {
		if fb, ok := Fallback[op]; ok {
			return fb
		}
	}
	return k
}
