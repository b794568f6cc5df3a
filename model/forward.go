package model

import (
	"math"
)

// workspace holds the activations of one RunBlocks (or ProbeBlock) call, reused by every
// block; x is the residual stream being updated. The attention's q, k, v and att are dead
// once o_proj has run, so the MLP's h1 takes their memory; up_proj runs a chunk of rows
// at a time into h2 (mlpChunkRows rows).
type workspace struct {
	x, xb, q, att, proj []float32 // [M, D]
	k, v                []float32 // [M, KV]
	h1                  []float32 // [M, H], over q, k, v and att
	h2                  []float32 // [min(M, mlpChunkRows), H]
}

// mlpChunkRows is how many rows up_proj and the SiLU product take at a time: a linear
// layer's rows are independent, so the chunks give the whole batch's bits.
var mlpChunkRows = 256

// Forward runs the prefill of each sequence in tokens (sequences may differ in length; each
// is attended to on its own, positions start at 0) and returns the logits of every
// position: logits[b] is [len(tokens[b]), vocab] row-major. hook, if not nil, sees the
// input of every linear layer over all sequences' rows stacked ([sum of lengths, in]).
func (m *Model) Forward(tokens [][]int, hook Hook) ([][]float32, error) {
	h, err := m.Embed(tokens)
	if err != nil {
		return nil, err
	}
	if err := m.RunBlocks(h, 0, m.Blocks(), hook); err != nil {
		return nil, err
	}
	return m.Head(h)
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
