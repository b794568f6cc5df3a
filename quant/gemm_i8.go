package quant

// The int8 GEMM kernel behind GemmI8 and GemmW8A8: exact int32 dot products, three tokens
// per 64-bit multiply.
//
// Three tokens' activations at the same input k are packed into one int64 as the exact
// value a[m,k] + a[m+1,k]*2^21 + a[m+2,k]*2^42 (a "triple"). Multiplying it by a weight w
// gives the three products in the same three 21-bit lanes, and a running int64 sum over k
// holds s0 + s1*2^21 + s2*2^42, s0..s2 the three tokens' dot products: one multiply and
// one add per three multiply-accumulates, where the plain loop needs a sign-extension, a
// multiply and an add for each. It is all exact integer arithmetic as long as every lane
// sum stays inside a signed 21-bit range: a product is at most 2^14 in magnitude, so the
// sums run over chunks of i8LaneChunk = 63 inputs (63*2^14 < 2^20), after which the lanes
// are taken apart (sign-extend the low 21 bits, subtract, shift; twice) and added to int32
// accumulators, wrapping like the GPU's. Integer addition is associative modulo 2^32, so
// the result is the plain int32 loop's bit for bit at every K, including the wrap-around
// past 2^17 inputs.
const (
	i8LaneBits  = 21
	i8LaneChunk = 63
)

// packTokenTriples packs the tokens of a ([M, K] int8) three at a time: triple t, at
// g[t*K:(t+1)*K], holds tokens 3t..3t+2, and the number of triples is a multiple of
// i8Triples. Missing tokens (past M) count as zeros.
func packTokenTriples(a []int8, M, K int) []int64 {
	T := (M + 3*i8Triples - 1) / (3 * i8Triples) * i8Triples
	g := make([]int64, T*K)
	for m := 0; m < M; m++ {
		dst := g[(m/3)*K : (m/3+1)*K]
		shift := i8LaneBits * uint(m%3)
		for k, v := range a[m*K : (m+1)*K] {
			dst[k] += int64(v) << shift
		}
	}
	return g
}

// i8Triples is the number of triples (3 each: 9 tokens) one pass over a weight row serves.
const i8Triples = 3

// gemmI8Block returns the dot products of the M tokens with weight rows [n0, n1) of w
// ([N, K]), laid out [n1-n0][M]. The callers write them out a token (output row) at a time:
// writing a column of the [M, N] output would touch M cache lines spaced N values apart,
// which for N a power of two all fall into the same few L1 sets.
func gemmI8Block(g []int64, w []int8, M, K, n0, n1 int) []int32 {
	acc := make([]int32, (n1-n0)*M)
	for n := n0; n < n1; n++ {
		gemmI8Row(g, w[n*K:(n+1)*K], M, K, acc[(n-n0)*M:(n-n0+1)*M])
	}
	return acc
}

// gemmI8Row sets acc[m] to the dot product of token m with weight row w (K inputs) for
// every token m < M. g is packTokenTriples of the M tokens.
func gemmI8Row(g []int64, w []int8, M, K int, acc []int32) {
	const tokens = 3 * i8Triples
	acc = acc[:M]
	for h := 0; h*tokens < M; h++ {
		t := h * i8Triples
		d := dot9(g[t*K:(t+1)*K], g[(t+1)*K:(t+2)*K], g[(t+2)*K:(t+3)*K], w)
		copy(acc[h*tokens:], d[:])
	}
}

// dot9 returns the nine dot products of triples g0, g1 and g2 with the weight row w (all of
// one length), chunk by chunk.
func dot9(g0, g1, g2 []int64, w []int8) (acc [9]int32) {
	// The fewest chunks of at most i8LaneChunk inputs, of (nearly) equal length: K = 64 is
	// two chunks of 32, not 63 and 1.
	chunks := (len(w) + i8LaneChunk - 1) / i8LaneChunk
	size := (len(w) + chunks - 1) / max(chunks, 1)
	for k0 := 0; k0 < len(w); k0 += size {
		k1 := min(k0+size, len(w))
		t0, t1, t2 := dotTriples(g0[k0:k1], g1[k0:k1], g2[k0:k1], w[k0:k1])
		addLanes((*[3]int32)(acc[0:3]), t0)
		addLanes((*[3]int32)(acc[3:6]), t1)
		addLanes((*[3]int32)(acc[6:9]), t2)
	}
	return acc
}

// dotTriples returns the lane sums of triples a0, a1 and a2 with w over one chunk. It is a
// function of its own (not inlined) so that the compiler keeps its few values in registers.
//
//go:noinline
func dotTriples(a0, a1, a2 []int64, w []int8) (t0, t1, t2 int64) {
	a0, a1, a2 = a0[:len(w)], a1[:len(w)], a2[:len(w)]
	for k, v := range w {
		b := int64(v)
		t0 += a0[k] * b
		t1 += a1[k] * b
		t2 += a2[k] * b
	}
	return t0, t1, t2
}

// addLanes adds the three lane sums of s (each within [-2^20, 2^20)) to acc, wrapping.
func addLanes(acc *[3]int32, s int64) {
	const up = 64 - i8LaneBits
	l0 := s << up >> up // sign-extend the low lane
	s = (s - l0) >> i8LaneBits
	l1 := s << up >> up
	l2 := (s - l1) >> i8LaneBits
	acc[0] += int32(l0)
	acc[1] += int32(l1)
	acc[2] += int32(l2)
}
