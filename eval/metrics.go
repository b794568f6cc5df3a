package eval

import "math"

// Accumulator sums per-token statistics over windows in a fixed order.
type Accumulator struct {
	Scored   int     // scored targets
	NLLSum   float64 // sum of -log P(target)
	Compared int     // positions compared with a reference
	KLSum    float64 // sum of KL(P_ref || P)
	Agree    int     // positions whose argmax equals the reference's
}

// LogSumExp is ln of the sum of exp(row[i]) in float64, shifted by the row's maximum.
func LogSumExp(row []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum)
}

// MeanNLL is the mean negative log-likelihood of every next token of seqs under f (BOS
// targets included, unlike Evaluate), summed in float64 in order: deterministic. f runs
// batch windows at a time.
func MeanNLL(f Forwarder, vocab int, seqs [][]int, batch int) (float64, error) {
	if batch <= 0 {
		batch = 1
	}
	var nll float64
	var n int
	for b0 := 0; b0 < len(seqs); b0 += batch {
		part := seqs[b0:min(b0+batch, len(seqs))]
		logits, err := f.Forward(part, nil)
		if err != nil {
			return 0, err
		}
		for b, seq := range part {
			for i := 0; i+1 < len(seq); i++ {
				row := logits[b][i*vocab : (i+1)*vocab]
				nll += LogSumExp(row) - float64(row[seq[i+1]])
				n++
			}
		}
	}
	return nll / float64(max(n, 1)), nil
}

// logSoftmax writes log P for one row of logits (float64).
func logSoftmax(dst []float64, logits []float32) {
	lse := LogSumExp(logits)
	for i, v := range logits {
		dst[i] = float64(v) - lse
	}
}

func argmax32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Scored reports whether position p of window predicts a scored target: p+1 exists and is
// not bos.
func Scored(window []int, p, bos int) bool { return p+1 < len(window) && window[p+1] != bos }

// AddWindow scores one window: logits is [len(window), vocab] of the evaluated model and ref
// (nil when there is no reference) the same for the reference model.
func (a *Accumulator) AddWindow(window []int, logits, ref []float32, vocab, bos int) {
	a.AddPositions(window, 0, len(window), logits, ref, vocab, bos)
}

// AddPositions scores positions [from, to) of window: logits (and ref, nil when there is
// no reference) hold those positions' rows, [to-from, vocab]. The statistics are added
// position after position, so scoring a window's positions in consecutive parts gives
// AddWindow's sums bit for bit.
func (a *Accumulator) AddPositions(window []int, from, to int, logits, ref []float32, vocab, bos int) {
	lp := make([]float64, vocab)
	var lr []float64
	if ref != nil {
		lr = make([]float64, vocab)
	}
	for p := from; p < to; p++ {
		if !Scored(window, p, bos) {
			continue
		}
		i := p - from
		row := logits[i*vocab : (i+1)*vocab]
		logSoftmax(lp, row)
		a.Scored++
		a.NLLSum -= lp[window[p+1]]
		if ref == nil {
			continue
		}
		rrow := ref[i*vocab : (i+1)*vocab]
		logSoftmax(lr, rrow)
		var kl float64
		for v, l := range lr {
			if pr := math.Exp(l); pr > 0 {
				kl += pr * (l - lp[v])
			}
		}
		a.KLSum += kl
		a.Compared++
		if argmax32(row) == argmax32(rrow) {
			a.Agree++
		}
	}
}

// NLL is the mean negative log-likelihood per scored token (nats).
func (a *Accumulator) NLL() float64 { return a.NLLSum / float64(max(a.Scored, 1)) }

// Perplexity is exp(NLL).
func (a *Accumulator) Perplexity() float64 { return math.Exp(a.NLL()) }

// KL is the mean KL(P_ref || P) per compared position (nats).
func (a *Accumulator) KL() float64 { return a.KLSum / float64(max(a.Compared, 1)) }

// Top1 is the share of compared positions whose argmax agrees with the reference.
func (a *Accumulator) Top1() float64 { return float64(a.Agree) / float64(max(a.Compared, 1)) }
