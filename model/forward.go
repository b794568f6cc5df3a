package model

import (
	"fmt"
	"math"
)

// workspace holds the activations of one Forward call, reused by every layer.
type workspace struct {
	x, xb, q, att, proj []float32 // [M, D]
	k, v                []float32 // [M, KV]
	h1, h2              []float32 // [M, H]
}

// Forward runs the prefill of each sequence in tokens (sequences may differ in length; each
// is attended to on its own, positions start at 0) and returns the logits of every
// position: logits[b] is [len(tokens[b]), vocab] row-major. hook, if not nil, sees the
// input of every linear layer over all sequences' rows stacked ([sum of lengths, in]).
func (m *Model) Forward(tokens [][]int, hook Hook) ([][]float32, error) {
	cfg := m.Config
	D, KV, H, V := cfg.Dim, cfg.KVDim(), cfg.HiddenDim, cfg.Vocab
	if len(tokens) == 0 {
		return nil, fmt.Errorf("model: forward of an empty batch")
	}
	offsets := make([]int, len(tokens)+1)
	maxLen := 0
	for b, seq := range tokens {
		if len(seq) == 0 {
			return nil, fmt.Errorf("model: sequence %d of the batch is empty", b)
		}
		if cfg.MaxSeq > 0 && len(seq) > cfg.MaxSeq {
			return nil, fmt.Errorf("model: sequence %d has %d tokens, longer than the model's %d", b, len(seq), cfg.MaxSeq)
		}
		for i, t := range seq {
			if t < 0 || t >= V {
				return nil, fmt.Errorf("model: sequence %d position %d: token id %d outside the vocabulary [0, %d)", b, i, t, V)
			}
		}
		offsets[b+1] = offsets[b] + len(seq)
		maxLen = max(maxLen, len(seq))
	}
	M := offsets[len(tokens)]
	cos, sin := m.rope(maxLen)
	ws := &workspace{
		x: make([]float32, M*D), xb: make([]float32, M*D), q: make([]float32, M*D),
		att: make([]float32, M*D), proj: make([]float32, M*D),
		k: make([]float32, M*KV), v: make([]float32, M*KV),
		h1: make([]float32, M*H), h2: make([]float32, M*H),
	}
	for b, seq := range tokens {
		for i, t := range seq {
			copy(ws.x[(offsets[b]+i)*D:(offsets[b]+i+1)*D], m.embed[t*D:(t+1)*D])
		}
	}
	eps := float32(cfg.NormEps)
	run := func(ly *layer, i int, in, out []float32) {
		if hook != nil {
			_, k := ly.lin[i].Dims()
			hook(ly.names[i], in[:M*k], M, k)
		}
		ly.lin[i].Forward(in, M, out)
	}
	for l := range m.layers {
		ly := &m.layers[l]
		rmsNorm(ws.xb, ws.x, ly.attnNorm, M, D, eps)
		run(ly, linQ, ws.xb, ws.q)
		run(ly, linK, ws.xb, ws.k)
		run(ly, linV, ws.xb, ws.v)
		m.applyRope(ws.q, ws.k, offsets, cos, sin)
		m.attention(ws, offsets, maxLen)
		run(ly, linO, ws.att, ws.proj)
		addInPlace(ws.x, ws.proj)

		rmsNorm(ws.xb, ws.x, ly.ffnNorm, M, D, eps)
		run(ly, linGate, ws.xb, ws.h1)
		run(ly, linUp, ws.xb, ws.h2)
		siluMul(ws.h1, ws.h2, m.exp64)
		run(ly, linDown, ws.h1, ws.proj)
		addInPlace(ws.x, ws.proj)
	}
	rmsNorm(ws.xb, ws.x, m.finalNorm, M, D, eps)
	logits := make([]float32, M*V)
	m.classifier.Forward(ws.xb, M, logits)
	out := make([][]float32, len(tokens))
	for b := range tokens {
		out[b] = logits[offsets[b]*V : offsets[b+1]*V : offsets[b+1]*V]
	}
	return out, nil
}

func addInPlace(x, y []float32) {
	for i, v := range y {
		x[i] += v
	}
}

// applyRope rotates every query and key head at its position within its sequence.
func (m *Model) applyRope(q, k []float32, offsets []int, cos, sin []float32) {
	hd := m.Config.HeadDim()
	half := hd / 2
	rot := ropeHalf
	if m.interleaved {
		rot = ropeInterleaved
	}
	D, KV := m.Config.Dim, m.Config.KVDim()
	for b := 0; b+1 < len(offsets); b++ {
		for row := offsets[b]; row < offsets[b+1]; row++ {
			pos := row - offsets[b]
			cs, sn := cos[pos*half:(pos+1)*half], sin[pos*half:(pos+1)*half]
			for h := 0; h < D; h += hd {
				rot(q[row*D+h:row*D+h+hd], cs, sn)
			}
			for h := 0; h < KV; h += hd {
				rot(k[row*KV+h:row*KV+h+hd], cs, sn)
			}
		}
	}
}

// attention computes causal softmax(q k^T / sqrt(hd)) v for every (sequence, query head)
// pair in parallel; query head h reads key/value head h / (heads / kvHeads) (GQA). The
// arithmetic follows llama2.c's order (dot product, divide, softmax, weighted sum in
// position order).
func (m *Model) attention(ws *workspace, offsets []int, maxLen int) {
	cfg := m.Config
	hd, nh, D, KV := cfg.HeadDim(), cfg.Heads, cfg.Dim, cfg.KVDim()
	group := nh / cfg.KVHeads
	scale := float32(math.Sqrt(float64(hd)))
	nseq := len(offsets) - 1
	parallelFor(nseq*nh, func(lo, hi int) {
		scores := make([]float32, maxLen)
		for task := lo; task < hi; task++ {
			b, h := task/nh, task%nh
			kvh := h / group
			base, n := offsets[b], offsets[b+1]-offsets[b]
			for t := 0; t < n; t++ {
				qv := ws.q[(base+t)*D+h*hd : (base+t)*D+(h+1)*hd]
				sc := scores[:t+1]
				for s := 0; s <= t; s++ {
					kv := ws.k[(base+s)*KV+kvh*hd : (base+s)*KV+(kvh+1)*hd]
					var dot float32
					for i, qq := range qv {
						dot += float32(qq * kv[i])
					}
					sc[s] = dot / scale
				}
				softmaxInPlace(sc, m.exp64)
				o := ws.att[(base+t)*D+h*hd : (base+t)*D+(h+1)*hd]
				clear(o)
				for s, a := range sc {
					vv := ws.v[(base+s)*KV+kvh*hd : (base+s)*KV+(kvh+1)*hd]
					for i, x := range vv {
						o[i] += float32(a * x)
					}
				}
			}
		}
	})
}
