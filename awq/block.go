package awq

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
)

// Blocks caches, for a few calibration sequences, the normalized inputs of every decoder
// layer's attention (q_proj's input) and MLP (gate_proj's input), so that the scales of
// q/k/v and gate/up can be judged by the error of the whole block's output (attention
// through the full-precision o_proj, SwiGLU through the full-precision down_proj) instead
// of the summed errors of the layers' own outputs: an error in q or k matters only through
// the attention weights, and one in gate or up through the product with the other.
type Blocks struct {
	cfg    checkpoint.LlamaConfig
	lens   []int       // sequence lengths, in order
	attnIn [][]float32 // [layer] -> [M, Dim]
	mlpIn  [][]float32 // [layer] -> [M, Dim]
}

// CaptureBlocks runs m over seqs (batch per forward pass) and keeps every layer's block
// inputs.
func CaptureBlocks(m *model.Model, seqs [][]int, batch int) (*Blocks, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("awq: no sequences for the block objective")
	}
	if batch <= 0 {
		batch = 1
	}
	L := m.Config.Layers
	b := &Blocks{cfg: m.Config, attnIn: make([][]float32, L), mlpIn: make([][]float32, L)}
	which := map[string]*[]float32{}
	for l := 0; l < L; l++ {
		which[fmt.Sprintf("model.layers.%d.self_attn.q_proj", l)] = &b.attnIn[l]
		which[fmt.Sprintf("model.layers.%d.mlp.gate_proj", l)] = &b.mlpIn[l]
	}
	for b0 := 0; b0 < len(seqs); b0 += batch {
		part := seqs[b0:min(b0+batch, len(seqs))]
		if _, err := m.Forward(part, func(name string, x []float32, M, K int) {
			if p := which[name]; p != nil {
				*p = append(*p, x[:M*K]...)
			}
		}); err != nil {
			return nil, fmt.Errorf("awq: block inputs: %w", err)
		}
		for _, s := range part {
			b.lens = append(b.lens, len(s))
		}
	}
	return b, nil
}

// Tokens is the number of cached token positions.
func (b *Blocks) Tokens() int {
	n := 0
	for _, l := range b.lens {
		n += l
	}
	return n
}

// outputError returns the mean over tokens of ||y - ref||^2.
func outputError(y, ref []float32, tokens int) float64 {
	var e float64
	for i, v := range y {
		d := float64(v) - float64(ref[i])
		e += d * d
	}
	return e / float64(tokens)
}

// attention returns the attention block output of layer l (through o_proj) on the cached
// inputs, with the given q/k/v/o weights and q/k/v biases (nil: none).
func (b *Blocks) attention(l int, wq, wk, wv, bq, bk, bv, wo []float32) []float32 {
	cfg := b.cfg
	D, KV, hd, nh := cfg.Dim, cfg.KVDim(), cfg.HeadDim(), cfg.Heads
	x := b.attnIn[l]
	M := len(x) / D
	q, k, v := linear(x, wq, bq, M, D, D), linear(x, wk, bk, M, KV, D), linear(x, wv, bv, M, KV, D)
	maxLen := 0
	for _, n := range b.lens {
		maxLen = max(maxLen, n)
	}
	half := hd / 2
	cos, sin := make([]float64, maxLen*half), make([]float64, maxLen*half)
	for i := 0; i < half; i++ {
		freq := 1 / math.Pow(cfg.RopeTheta, float64(2*i)/float64(hd))
		for p := 0; p < maxLen; p++ {
			cos[p*half+i], sin[p*half+i] = math.Cos(float64(p)*freq), math.Sin(float64(p)*freq)
		}
	}
	rot := func(vec []float32, p int) {
		for i := 0; i < half; i++ {
			a, c := float64(vec[i]), float64(vec[i+half])
			cs, sn := cos[p*half+i], sin[p*half+i]
			vec[i], vec[i+half] = float32(a*cs-c*sn), float32(a*sn+c*cs)
		}
	}
	att := make([]float32, M*D)
	scores := make([]float64, maxLen)
	scale := math.Sqrt(float64(hd))
	group := nh / cfg.KVHeads
	base := 0
	for _, n := range b.lens {
		for t := 0; t < n; t++ {
			for h := 0; h < D; h += hd {
				rot(q[(base+t)*D+h:(base+t)*D+h+hd], t)
			}
			for h := 0; h < KV; h += hd {
				rot(k[(base+t)*KV+h:(base+t)*KV+h+hd], t)
			}
		}
		for h := 0; h < nh; h++ {
			kvh := h / group
			for t := 0; t < n; t++ {
				qv := q[(base+t)*D+h*hd : (base+t)*D+(h+1)*hd]
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					kv := k[(base+s)*KV+kvh*hd : (base+s)*KV+(kvh+1)*hd]
					var dot float64
					for i, a := range qv {
						dot += float64(a) * float64(kv[i])
					}
					scores[s] = dot / scale
					mx = math.Max(mx, scores[s])
				}
				var sum float64
				for s := 0; s <= t; s++ {
					scores[s] = math.Exp(scores[s] - mx)
					sum += scores[s]
				}
				o := att[(base+t)*D+h*hd : (base+t)*D+(h+1)*hd]
				for s := 0; s <= t; s++ {
					a := scores[s] / sum
					vv := v[(base+s)*KV+kvh*hd : (base+s)*KV+(kvh+1)*hd]
					for i, x := range vv {
						o[i] += float32(a * float64(x))
					}
				}
			}
		}
		base += n
	}
	return linear(att, wo, nil, M, D, D)
}

// mlp returns the SwiGLU block output of layer l (through down_proj) on the cached inputs.
func (b *Blocks) mlp(l int, wg, wu, wd []float32) []float32 {
	D, H := b.cfg.Dim, b.cfg.HiddenDim
	x := b.mlpIn[l]
	M := len(x) / D
	g, u := linear(x, wg, nil, M, H, D), linear(x, wu, nil, M, H, D)
	for i, a := range g {
		g[i] = float32(float64(a) / (1 + math.Exp(-float64(a))) * float64(u[i]))
	}
	return linear(g, wd, nil, M, D, H)
}

// linear returns x [M, K] W^T (+ bias) for W [N, K], float64 sums.
func linear(x, w, bias []float32, M, N, K int) []float32 {
	out := make([]float32, M*N)
	for m := 0; m < M; m++ {
		xr := x[m*K : (m+1)*K]
		for n := 0; n < N; n++ {
			wr := w[n*K : (n+1)*K]
			var s float64
			for k, a := range xr {
				s += float64(a) * float64(wr[k])
			}
			if bias != nil {
				s += float64(bias[n])
			}
			out[m*N+n] = float32(s)
		}
	}
	return out
}

// blockRef returns the full-precision output of the block a norm group feeds (attention
// for input_layernorm, MLP for post_attention_layernorm) and a function computing the
// block output with replaced consumer weights (by layer name).
func (b *Blocks) blockFor(ts map[string]*tensor.Tensor, g Group) (ref []float32, run func(w map[string][]float32) []float32, err error) {
	var layer int
	var attn bool
	if _, err := fmt.Sscanf(g.Prev, "model.layers.%d.input_layernorm.weight", &layer); err == nil {
		attn = true
	} else if _, err := fmt.Sscanf(g.Prev, "model.layers.%d.post_attention_layernorm.weight", &layer); err != nil {
		return nil, nil, fmt.Errorf("awq: %s is not a decoder layer norm", g.Prev)
	}
	if layer < 0 || layer >= len(b.attnIn) {
		return nil, nil, fmt.Errorf("awq: %s: no cached inputs for layer %d", g.Prev, layer)
	}
	p := fmt.Sprintf("model.layers.%d.", layer)
	get := func(name string) []float32 {
		if t := ts[name]; t != nil {
			return t.ToF32()
		}
		return nil
	}
	if attn {
		names := []string{p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"}
		wo := get(p + "self_attn.o_proj.weight")
		bq, bk, bv := get(names[0]+".bias"), get(names[1]+".bias"), get(names[2]+".bias")
		run = func(w map[string][]float32) []float32 {
			return b.attention(layer, w[names[0]], w[names[1]], w[names[2]], bq, bk, bv, wo)
		}
		ref = run(map[string][]float32{names[0]: get(names[0] + ".weight"), names[1]: get(names[1] + ".weight"), names[2]: get(names[2] + ".weight")})
		return ref, run, nil
	}
	names := []string{p + "mlp.gate_proj", p + "mlp.up_proj"}
	wd := get(p + "mlp.down_proj.weight")
	run = func(w map[string][]float32) []float32 { return b.mlp(layer, w[names[0]], w[names[1]], wd) }
	ref = run(map[string][]float32{names[0]: get(names[0] + ".weight"), names[1]: get(names[1] + ".weight")})
	return ref, run, nil
}
