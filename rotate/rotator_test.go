package rotate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type modelCase struct {
	name string
	cfg  checkpoint.LlamaConfig
}

func modelCases() []modelCase {
	base := checkpoint.LlamaConfig{Layers: 2, Vocab: 40, MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5}
	with := func(dim, hidden, heads, kv int, tied, bias bool) checkpoint.LlamaConfig {
		c := base
		c.Dim, c.HiddenDim, c.Heads, c.KVHeads, c.TiedEmbeddings, c.Bias = dim, hidden, heads, kv, tied, bias
		return c
	}
	return []modelCase{
		{"mha-untied", with(16, 24, 4, 4, false, false)},
		{"gqa-tied", with(16, 24, 4, 2, true, false)},
		{"mha-bias-tied", with(16, 40, 2, 2, true, true)},
		// 24 = 12·2 (Paley I), head_dim 12 (Paley I), one key/value head for two query heads.
		{"gqa-bias-untied-paley", with(24, 36, 2, 1, false, true)},
		// 20 = Paley I (q = 19); head_dim 10 has no Hadamard matrix: random orthogonal.
		{"gqa-bias-tied-dim20", with(20, 30, 2, 1, true, true)},
	}
}

// The rotated full-precision model computes the same logits as the original.
func TestRotatedLogitsMatch(t *testing.T) {
	tokens := tokenBatch(40, 9, 5)
	for _, mc := range modelCases() {
		for _, opt := range []Options{{}, {Kind: Random}, {NoHeads: true}, {Kind: Identity}} {
			t.Run(fmt.Sprintf("%s/%s/noheads=%v", mc.name, opt.Kind, opt.NoHeads), func(t *testing.T) {
				ts := llamatest.Tensors(mc.cfg, 11, llamatest.RandomNorms)
				want := logits(t, mc.cfg, ts, tokens)
				rcfg, rts, err := Checkpoint(mc.cfg, named(ts), 1234, opt)
				require.NoError(t, err)
				assert.False(t, rcfg.TiedEmbeddings)
				got := logits(t, rcfg, byName(rts), tokens)
				e := relErr(want, got)
				t.Logf("relative logit error %.2e", e)
				assert.LessOrEqual(t, e, 1e-5)
			})
		}
	}
}

// The rotation really changes the weights (an identity bug would pass the logit test) and
// leaves the norms at one.
func TestRotatedTensorsChange(t *testing.T) {
	cfg := modelCases()[1].cfg // tied
	ts := llamatest.Tensors(cfg, 11, llamatest.RandomNorms)
	_, rts, err := Checkpoint(cfg, named(ts), 1, Options{})
	require.NoError(t, err)
	out := byName(rts)
	require.Contains(t, out, "lm_head.weight", "tied embeddings are untied")
	for name, rt := range out {
		require.Equal(t, tensor.F32, rt.DType, name)
		if strings.HasSuffix(name, "norm.weight") {
			for _, v := range rt.F32() {
				require.Equal(t, float32(1), v, name)
			}
			continue
		}
		orig := ts[name]
		if name == "lm_head.weight" {
			orig = ts["model.embed_tokens.weight"]
		}
		same := 0
		for i, v := range rt.F32() {
			if v == orig.F32()[i] {
				same++
			}
		}
		assert.Less(t, same, rt.NumElements()/10, "%s barely changed", name)
	}
}

// Every output tensor against its definition, computed densely here in float64:
// W' = outRotᵀ·W·diag(g)·inRot with the block-diagonal head rotation built as a matrix.
// It also covers o_proj and down_proj biases, which package model does not run.
func TestTensorsMatchDenseFormula(t *testing.T) {
	cfg := modelCases()[3].cfg // GQA with biases, Paley widths
	ts := llamatest.Tensors(cfg, 5, llamatest.RandomNorms)
	r := testRand()
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts[p+"self_attn.o_proj.bias"] = tensor.FromF32(gauss(r, cfg.Dim), cfg.Dim)
		ts[p+"mlp.down_proj.bias"] = tensor.FromF32(gauss(r, cfg.Dim), cfg.Dim)
		ts[p+"mlp.up_proj.bias"] = tensor.FromF32(gauss(r, cfg.HiddenDim), cfg.HiddenDim)
	}
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
	norm := func(name string) []float64 { return f64(ts[name].F32()) }
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
		w := f64(ts[c.name].F32())
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

func testRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func gauss(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func f64(v []float32) []float64 {
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
