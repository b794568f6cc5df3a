package rotate

import (
	"math"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// Every output tensor against its definition, computed densely here in float64:
// W' = outRotᵀ·W·diag(g)·inRot with the block-diagonal head rotation built as a matrix.
// It also covers o_proj and down_proj biases, which package model does not run.
func TestTensorsMatchDenseFormula(t *testing.T) {
	cfg := modelCases()[3].cfg // GQA with biases, Paley widths
	ts := tensorsWithAllBiases(cfg, 5)
	rot, err := New(cfg, 77, Options{})
	require.NoError(t, err)
	src, err := checkpoint.NewMemory(named(ts), nil)
	require.NoError(t, err)
	hd := cfg.HeadDim()
	Q := rot.Residual().Dense()
	R := rot.Head().Dense()
	blk := func(nb int) []float64 { // diag(R, ..., R), nb blocks
		n := nb * hd
		m := make([]float64, n*n)
		for b := 0; b < nb; b++ {
			for i := 0; i < hd; i++ {
				for j := 0; j < hd; j++ {
					m[(b*hd+i)*n+b*hd+j] = R[i*hd+j]
				}
			}
		}
		return m
	}
	Rq, Rkv := blk(cfg.Heads), blk(cfg.KVHeads)
	norm := func(name string) []float64 { return denseOf(ts[name]) }
	p := "model.layers.1."
	an, fn := norm(p+"input_layernorm.weight"), norm(p+"post_attention_layernorm.weight")
	cases := []struct {
		name    string
		g       []float64
		in, out []float64
	}{
		{"model.embed_tokens.weight", nil, Q, nil},
		{"lm_head.weight", norm("model.norm.weight"), Q, nil},
		{p + "self_attn.q_proj.weight", an, Q, nil},
		{p + "self_attn.k_proj.weight", an, Q, nil},
		{p + "self_attn.v_proj.weight", an, Q, Rkv},
		{p + "self_attn.o_proj.weight", nil, Rq, Q},
		{p + "mlp.gate_proj.weight", fn, Q, nil},
		{p + "mlp.up_proj.weight", fn, Q, nil},
		{p + "mlp.down_proj.weight", nil, nil, Q},
		{p + "self_attn.q_proj.bias", nil, nil, nil},
		{p + "self_attn.v_proj.bias", nil, nil, Rkv},
		{p + "self_attn.o_proj.bias", nil, nil, Q},
		{p + "mlp.down_proj.bias", nil, nil, Q},
		{p + "mlp.up_proj.bias", nil, nil, nil},
	}
	for _, c := range cases {
		got, err := rot.Tensor(src, c.name)
		require.NoError(t, err, c.name)
		w := denseOf(ts[c.name])
		rows, cols := 1, len(w)
		if len(ts[c.name].Shape) == 2 {
			rows, cols = ts[c.name].Shape[0], ts[c.name].Shape[1]
		}
		if len(ts[c.name].Shape) == 1 { // a bias b [out] transforms as the row vector b·outRot
			if c.out != nil {
				w = matmul(w, 1, cols, c.out, cols)
			}
		} else {
			if c.g != nil {
				for r := 0; r < rows; r++ {
					for k := 0; k < cols; k++ {
						w[r*cols+k] *= c.g[k]
					}
				}
			}
			if c.in != nil {
				w = matmul(w, rows, cols, c.in, cols)
			}
			if c.out != nil { // outRotᵀ·W = (Wᵀ·outRot)ᵀ
				w = transpose(matmul(transpose(w, rows, cols), cols, rows, c.out, rows), cols, rows)
			}
		}
		require.Len(t, got.F32(), len(w), c.name)
		for i, v := range got.F32() {
			require.InDelta(t, w[i], float64(v), 1e-5*(1+math.Abs(w[i])), "%s element %d", c.name, i)
		}
	}
}

// denseOf is t's values in float64, the precision of the dense reference formulas.
func denseOf(t *tensor.Tensor) []float64 {
	v := t.F32()
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// matmul returns a [n, k] · b [k, m].
func matmul(a []float64, n, k int, b []float64, m int) []float64 {
	out := make([]float64, n*m)
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			var s float64
			for x := 0; x < k; x++ {
				s += a[i*k+x] * b[x*m+j]
			}
			out[i*m+j] = s
		}
	}
	return out
}

func transpose(a []float64, n, m int) []float64 {
	out := make([]float64, n*m)
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			out[j*n+i] = a[i*m+j]
		}
	}
	return out
}
