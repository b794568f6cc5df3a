package bench

// How `autoq bench gemm` times one kernel on a backend.GEMMTimer: how many weight copies the
// timer keeps, the untimed warm-up, the timed loop and the bytes each kernel must move.

import (
	"fmt"

	"github.com/autoq/autoq/backend"
)

// maxWeightCopies bounds the rotating weight copies of one encoding; the copies of the three
// weight encodings together may take at most 3/5 of the free memory (a fifth each), which
// leaves room for activations, outputs and the split-K workspace.
const maxWeightCopies = 64

// gemmWeightCopies returns the copies policy of t: enough copies of a weight that together they
// exceed twice the cache, so that every timed call streams its weights from memory as it
// would in a real forward pass, within a fifth of the free memory per encoding. One copy
// when there is no cache to defeat.
func gemmWeightCopies(t backend.GEMMTimer) (func(weightBytes int) int, error) {
	cache := t.CacheBytes()
	if cache <= 0 {
		return func(int) int { return 1 }, nil
	}
	free, err := t.FreeBytes()
	if err != nil {
		return nil, err
	}
	budget := free / 5
	return func(bytes int) int {
		if bytes <= 0 {
			return 1
		}
		c := min(2*cache/bytes+1, maxWeightCopies)
		for c > 1 && budget > 0 && uint64(c*bytes) > budget {
			c--
		}
		return c
	}, nil
}

// gemmNotes is the report's description of the timing.
func gemmNotes(t backend.GEMMTimer) string {
	n := t.Notes()
	if c := t.CacheBytes(); c > 0 {
		n += fmt.Sprintf("; cache (%d MiB) defeated by rotating weight copies totalling > 2x its size", c>>20)
	}
	return n
}

// holdPerCallNs is the device time the host may need to queue one call; the device is held
// for iters of them (at most maxHoldNs) before the timed calls, so that they run back to back
// and the clock measures the kernels, not the host's launch latency.
const (
	holdPerCallNs = 100_000
	maxHoldNs     = 200_000_000
)

// timeGemm runs kernel at M tokens warmup times untimed, then iters timed calls, each on the
// next weight copy, and returns each timed call's milliseconds.
func timeGemm(t backend.GEMMTimer, kernel string, M, warmup, iters int) ([]float64, error) {
	if iters < 1 {
		return nil, fmt.Errorf("iters=%d < 1", iters)
	}
	for i := 0; i < warmup; i++ {
		if err := t.Launch(kernel, M, i); err != nil {
			return nil, err
		}
	}
	hold := min(int64(iters)*holdPerCallNs, maxHoldNs)
	return t.TimeEach(iters, hold, func(i int) error { return t.Launch(kernel, M, warmup+i) })
}

// gemmBytes is what kernel k must move at least at (M, N, K): its inputs read once and its
// output written once. F = k.FloatBytes is the size of a float element.
//
//	float       F*(MK + NK + MN)
//	w8a8        MK + NK + F*MN + 4*(M+N)         int8 A and W, F32 scales of both
//	w8a8+aq     F*MK + NK + F*MN + 4*N           float A quantized on the fly
//	w4a16-g128  F*MK + NK/2 + F*NK/128 + F*MN    nibbles and one scale per 128 inputs
func gemmBytes(k backend.GEMMKernel, M, N, K int) int64 {
	f := int64(k.FloatBytes)
	mk, nk, mn := int64(M)*int64(K), int64(N)*int64(K), int64(M)*int64(N)
	switch k.Op {
	case backend.GEMMFloat:
		return f * (mk + nk + mn)
	case backend.GEMMW8A8:
		return mk + nk + f*mn + 4*int64(M+N)
	case backend.GEMMW8A8AQ:
		return f*mk + nk + f*mn + 4*int64(N)
	case backend.GEMMW4A16G128:
		return f*mk + nk/2 + f*nk/128 + f*mn
	}
	return 0
}
