package model

import (
	"math"
	"runtime"

	"github.com/autoq/autoq/quant"
)

// parallelFor runs fn over [0, n) split into contiguous chunks, one per core
// (quant.ParallelChunks, for work that cannot fail). Each index is handled by exactly one
// call, so results do not depend on scheduling.
func parallelFor(n int, fn func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	_ = quant.ParallelChunks(n, (n+workers-1)/workers, func(lo, hi int) error { fn(lo, hi); return nil })
}

// rmsNorm writes o = w * x / sqrt(mean(x^2) + eps) for each of the M rows of x [M, D]
// (llama2.c's order of operations, float32 throughout).
func rmsNorm(o, x, w []float32, M, D int, eps float32) {
	for m := 0; m < M; m++ {
		row := x[m*D : (m+1)*D]
		var ss float32
		for _, v := range row {
			ss += v * v
		}
		ss /= float32(D)
		ss += eps
		ss = 1 / float32(math.Sqrt(float64(ss)))
		out := o[m*D : (m+1)*D]
		for i, v := range row {
			out[i] = w[i] * (ss * v)
		}
	}
}

// ropeTable returns cos and sin of pos * theta^(-2i/headDim) for pos < seqLen and
// i < headDim/2, as [seqLen, headDim/2] float32 tables.
func ropeTable(seqLen, headDim int, theta float64) (cos, sin []float32) {
	half := headDim / 2
	cos = make([]float32, seqLen*half)
	sin = make([]float32, seqLen*half)
	for i := 0; i < half; i++ {
		freq := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
		for p := 0; p < seqLen; p++ {
			a := float64(p) * freq
			cos[p*half+i] = float32(math.Cos(a))
			sin[p*half+i] = float32(math.Sin(a))
		}
	}
	return cos, sin
}

// ropeHalf rotates one head vector v in place with HF's rotate_half pairing: element i is
// paired with i+headDim/2. cs and sn are the position's rows of the tables.
func ropeHalf(v, cs, sn []float32) {
	half := len(v) / 2
	for i := 0; i < half; i++ {
		a, b := v[i], v[i+half]
		v[i] = a*cs[i] - b*sn[i]
		v[i+half] = a*sn[i] + b*cs[i]
	}
}

// ropeInterleaved rotates with llama2.c's pairing (2i, 2i+1), for unpermuted weights.
func ropeInterleaved(v, cs, sn []float32) {
	for i := 0; i < len(v)/2; i++ {
		a, b := v[2*i], v[2*i+1]
		v[2*i] = a*cs[i] - b*sn[i]
		v[2*i+1] = a*sn[i] + b*cs[i]
	}
}

// softmaxInPlace normalises x to a probability vector (max-subtracted, float32). The
// exponentials are expf's (float32, within 2 ulps); exp64 selects math.Exp in float64
// rounded to float32 instead, the reference the tests compare the fast path with.
func softmaxInPlace(x []float32, exp64 bool) {
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float32
	if exp64 {
		for i, v := range x {
			e := float32(math.Exp(float64(v - mx)))
			x[i] = e
			sum += e
		}
	} else {
		for i, v := range x {
			x[i] = v - mx
		}
		expInPlace(x)
		for _, e := range x {
			sum += e
		}
	}
	for i := range x {
		x[i] /= sum
	}
}

// silu is x * sigmoid(x), with expf (exp64: math.Exp, as softmaxInPlace).
func silu(x float32, exp64 bool) float32 {
	if exp64 {
		return x * (1 / (1 + float32(math.Exp(float64(-x)))))
	}
	return x * (1 / (1 + expf(-x)))
}

// siluMul sets gate[i] = silu(gate[i]) * up[i] (the SwiGLU of the MLP), with the
// exponentials of a chunk at a time computed by expInPlace.
func siluMul(gate, up []float32, exp64 bool) {
	if exp64 {
		for i, g := range gate {
			gate[i] = silu(g, true) * up[i]
		}
		return
	}
	var e [256]float32
	for i0 := 0; i0 < len(gate); i0 += len(e) {
		g := gate[i0:min(i0+len(e), len(gate))]
		ec := e[:len(g)]
		for i, v := range g {
			ec[i] = -v
		}
		expInPlace(ec)
		for i, v := range g {
			g[i] = v * (1 / (1 + ec[i])) * up[i0+i]
		}
	}
}
