package model

import (
	"fmt"
	"slices"

	"github.com/autoq/autoq/quant"
)

// FakeQuant is the reference quantized linear layer: its weights are the dequantized
// levels of a quant.QTensor (exactly what a real kernel multiplies with), and with Act set
// its input is rounded to int8 levels with quant's activation rules and dequantized again.
// The product itself is the float32 Dense product.
type FakeQuant struct {
	Dense
	Act  quant.ActMode
	Amax float32 // ActStatic: the calibrated clipping threshold
	xq   []float32
}

// NewFakeQuant builds the layer from a quantized weight; bias may be nil. The layer keeps a
// copy of q (whose data may be a view of a mapped file) and dequantizes its rows as the
// product reads them: the bits of the dequantized float32 matrix from the quantized
// weight's memory.
func NewFakeQuant(q *quant.QTensor, bias []float32, act quant.ActMode, amax float32) (*FakeQuant, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("fake-quant %s: %w", q.Name, err)
	}
	if bias != nil && len(bias) != q.Rows {
		return nil, fmt.Errorf("fake-quant %s: dense linear: bias has %d entries, want %d", q.Name, len(bias), q.Rows)
	}
	own := *q
	own.Data, own.Scales = slices.Clone(q.Data), slices.Clone(q.Scales)
	own.Zeros, own.GIdx = slices.Clone(q.Zeros), slices.Clone(q.GIdx)
	return newFakeQuant(q.Name, Dense{Bias: bias, N: q.Rows, K: q.Cols, src: qRows{&own}}, act, amax)
}

// NewFakeQuantDequantized builds the layer from weights that are already dequantized
// ([n, k] row-major), for quantizers whose output is not one QTensor of this shape (e.g. a
// matrix quantized with zero-padded columns, then trimmed).
func NewFakeQuantDequantized(name string, w []float32, n, k int, bias []float32, act quant.ActMode, amax float32) (*FakeQuant, error) {
	d, err := NewDense(w, bias, n, k)
	if err != nil {
		return nil, fmt.Errorf("fake-quant %s: %w", name, err)
	}
	return newFakeQuant(name, *d, act, amax)
}

func newFakeQuant(name string, d Dense, act quant.ActMode, amax float32) (*FakeQuant, error) {
	if act == quant.ActStatic && !(amax > 0) {
		return nil, fmt.Errorf("fake-quant %s: static activation quantization needs a positive amax, got %g", name, amax)
	}
	return &FakeQuant{Dense: d, Act: act, Amax: amax}, nil
}

// Forward quantizes the input as configured, then multiplies.
func (f *FakeQuant) Forward(x []float32, M int, out []float32) {
	if f.Act == quant.ActNone {
		f.Dense.Forward(x, M, out)
		return
	}
	n := M * f.K
	if cap(f.xq) < n {
		f.xq = make([]float32, n)
	}
	xq := f.xq[:n]
	switch f.Act {
	case quant.ActDynamic:
		q, scales := quant.QuantizeActivationsPerToken(x[:n], M, f.K)
		for m := 0; m < M; m++ {
			for k := 0; k < f.K; k++ {
				xq[m*f.K+k] = float32(q[m*f.K+k]) * scales[m]
			}
		}
	case quant.ActStatic:
		q, scale := quant.QuantizeActivationsStatic(x[:n], f.Amax)
		for i, v := range q {
			xq[i] = float32(v) * scale
		}
	}
	f.Dense.Forward(xq, M, out)
}
