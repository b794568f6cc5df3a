package model

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// QuantLinear runs a linear layer on package quant's integer reference kernels (the CPU
// oracles of the CUDA kernels): W8A8 (int8 per-token activations x int8 per-channel
// weights, exact int32 accumulation, GemmW8A8) or W4A16 (float activations x int4 weights,
// GemmW4A16). Unlike FakeQuant it multiplies the stored levels themselves.
//
// When the layer's inputs do not divide by the group size, the scheme is fitted to the
// width with quant.FitCols (as everywhere in autoq).
type QuantLinear struct {
	Q    *quant.QTensor
	Bias []float32
	N, K int // logical shape; Q.Cols may be larger (padding)
	W8A8 bool
	xp   []float32
}

// NewQuantLinear quantizes w [n, k] with scheme s: 8-bit symmetric per-channel/per-tensor
// gives a W8A8 layer (activations quantized per token at run time), 4-bit gives W4A16.
func NewQuantLinear(name string, w, bias []float32, n, k int, s quant.Scheme, opt quant.SearchOptions) (*QuantLinear, error) {
	if len(w) != n*k {
		return nil, fmt.Errorf("quantized linear %s: %d weights for [%d, %d]", name, len(w), n, k)
	}
	if bias != nil && len(bias) != n {
		return nil, fmt.Errorf("quantized linear %s: bias has %d entries, want %d", name, len(bias), n)
	}
	w8a8 := s.Bits == 8 && s.Symmetric && s.Granularity != quant.PerGroup
	if !w8a8 && s.Bits != 4 {
		return nil, fmt.Errorf("quantized linear %s: no integer kernel for %s (W8A8 needs 8-bit symmetric per-channel or per-tensor weights; W4A16 needs 4-bit)", name, s)
	}
	q, err := quant.Quantize(name, w, n, k, s.FitCols(k), opt)
	if err != nil {
		return nil, err
	}
	return &QuantLinear{Q: q, Bias: bias, N: n, K: k, W8A8: w8a8}, nil
}

// Dims returns (N, K).
func (l *QuantLinear) Dims() (int, int) { return l.N, l.K }

// Forward pads the input if needed and calls the integer kernel. The shapes were checked
// at construction, so a kernel error is a broken invariant and panics.
func (l *QuantLinear) Forward(x []float32, M int, out []float32) {
	kp := l.Q.Cols
	in := x[:M*l.K]
	if kp != l.K {
		if cap(l.xp) < M*kp {
			l.xp = make([]float32, M*kp)
		}
		in = l.xp[:M*kp]
		clear(in)
		for m := 0; m < M; m++ {
			copy(in[m*kp:m*kp+l.K], x[m*l.K:(m+1)*l.K])
		}
	}
	var err error
	if l.W8A8 {
		aq, scales := quant.QuantizeActivationsPerToken(in, M, kp)
		err = quant.GemmW8A8Into(out[:M*l.N], aq, scales, M, l.Q, l.Bias)
	} else {
		err = quant.GemmW4A16Into(out[:M*l.N], in, M, l.Q, l.Bias)
	}
	if err != nil {
		panic(fmt.Sprintf("model: quantized linear %s: %v", l.Q.Name, err))
	}
}
