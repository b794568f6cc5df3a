package calibrun

import (
	"fmt"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
	"github.com/autoq/autoq/tokenizer"
)

// Blockwise is a calibration run driven one decoder block at a time by the caller (a
// streaming pipeline that keeps only the current block boundary): for each block, every
// batch of windows runs through the block with BlockHists' hook, and the block's histograms
// are added to the run. The thresholds, rounds and diagnostics are those of
// LayerThresholdsRounds on the same windows: histograms are exact counts, so neither the
// batching nor the block order changes a bit.
type Blockwise struct {
	engine  calib.Engine
	roundOf []int // per window
	res     *Result
	start   time.Time
}

// NewBlockwise prepares the run over the windows ws (in memory, one shard) with opt's
// Batch, Rounds and Calib; tok may be nil (token ids).
func NewBlockwise(m *model.Model, ws [][]int, tok tokenizer.Tokenizer, opt Options) (*Blockwise, error) {
	opt.Shards, opt.Shard = 1, 0
	if opt.SeqLen == 0 {
		for _, w := range ws {
			opt.SeqLen = max(opt.SeqLen, len(w), 2)
		}
	}
	if err := opt.check(); err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("calibrun: no calibration tokens")
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	total := len(ws)
	rounds := min(opt.Rounds, total)
	bw := &Blockwise{engine: backend.NewCPU(), roundOf: make([]int, total), start: time.Now()}
	res := &Result{Total: total, Windows: total, Opt: opt, ModelCtx: m.Config.MaxSeq, VocabSize: m.Config.Vocab, model: m}
	cov := newCoverage(m.Config.Vocab, tok, bos)
	wp := newWindowPrint()
	res.Rounds = make([]Round, rounds)
	for i, w := range ws {
		r := min(i*rounds/total, rounds-1)
		bw.roundOf[i] = r
		cov.add(w)
		wp.add(w)
		res.Rounds[r].Sequences, res.Rounds[r].Tokens = cov.sequences, cov.tokens
	}
	res.Coverage, res.streamPrint = cov.summary(), wp.fp.String()
	bw.res = res
	return bw, nil
}

// BlockHists accumulates one block's linear inputs into per-round histograms.
type BlockHists struct {
	bw     *Blockwise
	groups []Group
	index  map[string]int
	hists  [][]*calib.Histogram // [round][group], this round's values only
	ptr    *float32             // the current group's input buffer
	err    error
}

// Block starts the histograms of the next block.
func (bw *Blockwise) Block() *BlockHists {
	return &BlockHists{bw: bw, index: map[string]int{}, hists: make([][]*calib.Histogram, len(bw.res.Rounds))}
}

// Hook returns the hook of one batch: the windows first, first+1, ... of the run, whose
// lengths are lengths (the batch's rows in order). The first batch finds which layers share
// an input (the same buffer, as the whole-model probe does); later batches are checked
// against it.
func (h *BlockHists) Hook(first int, lengths []int) model.Hook {
	return func(name string, x []float32, M, K int) {
		if h.err != nil {
			return
		}
		gi, ok := h.index[name]
		if !ok {
			if len(h.groups) > 0 && &x[0] == h.ptr && h.groups[len(h.groups)-1].Channels == K && first == 0 {
				g := &h.groups[len(h.groups)-1]
				g.Members = append(g.Members, name)
				h.index[name] = len(h.groups) - 1
				return
			}
			if first != 0 && len(h.groups) > 0 {
				h.err = fmt.Errorf("calibrun: linear layer %q did not appear in the first batch", name)
				return
			}
			h.groups = append(h.groups, Group{Name: name, Members: []string{name}, Channels: K})
			gi = len(h.groups) - 1
			h.index[name] = gi
			for r := range h.hists {
				hist := calib.NewHistogram(name)
				hist.ChannelAbsMax = make([]float32, K)
				h.hists[r] = append(h.hists[r], hist)
			}
		} else if g := h.groups[gi]; name != g.Name {
			if &x[0] != h.ptr {
				h.err = fmt.Errorf("calibrun: linear layer %q was expected to read the input of %q but got another buffer", name, g.Name)
			}
			return
		}
		h.ptr = &x[0]
		if K != h.groups[gi].Channels {
			h.err = fmt.Errorf("calibrun: linear layer %q: input has %d channels, the first batch had %d", name, K, h.groups[gi].Channels)
			return
		}
		// Rows go to the round of their window; consecutive windows of one round in one add.
		row := 0
		for j := 0; j < len(lengths); {
			r := h.bw.roundOf[first+j]
			n := 0
			for ; j < len(lengths) && h.bw.roundOf[first+j] == r; j++ {
				n += lengths[j]
			}
			t := tensor.FromF32(x[row*K:(row+n)*K], n, K)
			if err := h.bw.engine.HistogramAdd([]*calib.Histogram{h.hists[r][gi]}, []*tensor.Tensor{t}); err != nil {
				h.err = fmt.Errorf("histogram of %q: %w", name, err)
				return
			}
			row += n
		}
	}
}

// BlockPart is one block's calibration: its input groups and, per round, each group's
// cumulative histogram. It is what a resumable run stores per block (JSON).
type BlockPart struct {
	Groups []Group              `json:"groups"`
	Cum    [][]*calib.Histogram `json:"cumulative"` // [round][group]
}

// Done closes the block's histograms.
func (h *BlockHists) Done() (*BlockPart, error) {
	if h.err != nil {
		return nil, h.err
	}
	if len(h.groups) == 0 {
		return nil, fmt.Errorf("calibrun: the block has no linear layers to calibrate")
	}
	p := &BlockPart{Groups: h.groups, Cum: make([][]*calib.Histogram, len(h.hists))}
	for r := range h.hists {
		for gi, hist := range h.hists[r] {
			c := hist.Clone()
			if r > 0 {
				c = p.Cum[r-1][gi].Clone()
				if err := c.Merge(hist); err != nil {
					return nil, fmt.Errorf("calibrun: merge %s: %w", hist.Name, err)
				}
			}
			p.Cum[r] = append(p.Cum[r], c)
		}
	}
	return p, nil
}

// Add adds a block's histograms to the run (blocks in order): thresholds after every
// round, as the streaming run records them.
func (bw *Blockwise) Add(p *BlockPart) error {
	res := bw.res
	if len(p.Cum) != len(res.Rounds) {
		return fmt.Errorf("calibrun: block part has %d rounds, the run %d", len(p.Cum), len(res.Rounds))
	}
	for r := range res.Rounds {
		if len(p.Cum[r]) != len(p.Groups) {
			return fmt.Errorf("calibrun: block part round %d has %d histograms for %d groups", r, len(p.Cum[r]), len(p.Groups))
		}
		snap := make([]*calib.Histogram, len(p.Groups))
		for i, h := range p.Cum[r] {
			snap[i] = h.Clone()
		}
		thr, err := bw.engine.Thresholds(snap, res.Opt.Calib)
		if err != nil {
			return fmt.Errorf("calibrun: thresholds after round %d: %w", r+1, err)
		}
		kl := make([]float64, len(thr))
		if res.Opt.Calib.Method == calib.MethodEntropy {
			for i, x := range thr {
				kl[i] = x.KL
			}
		} else {
			ent, err := bw.engine.Thresholds(snap, entropyOptions(res.Opt.Calib))
			if err != nil {
				return fmt.Errorf("calibrun: entropy after round %d: %w", r+1, err)
			}
			for i, x := range ent {
				kl[i] = x.KL
			}
		}
		rd := &res.Rounds[r]
		rd.Results = append(rd.Results, thr...)
		rd.KL = append(rd.KL, kl...)
		for _, h := range snap {
			rd.AbsMax = append(rd.AbsMax, h.AbsMax)
		}
	}
	res.Groups = append(res.Groups, p.Groups...)
	res.Hists = append(res.Hists, p.Cum[len(p.Cum)-1]...)
	res.Seconds = time.Since(bw.start).Seconds()
	return nil
}

// Result is the run so far (every block added).
func (bw *Blockwise) Result() *Result { return bw.res }
