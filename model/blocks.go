package model

import (
	"fmt"
	"slices"

	"github.com/autoq/autoq/checkpoint"
)

// Block-level entry points. Forward is Embed, RunBlocks over every decoder block, then Head;
// calling the three pieces separately gives the same bits. A caller can therefore stop at a
// block boundary, keep the residual stream there (a Hidden), change the model (plug
// quantized layers into the blocks already visited) and go on from the stored state
// instead of re-running the blocks before it. This is how sequential GPTQ runs at the cost
// of about one forward pass of the calibration data (gptq/collect.Sequential), and the
// shape of any block-at-a-time pass (streaming a large model's weights, per-block
// sensitivity): only one block's activations and the boundary states are alive at a time.
//
//	h, _ := m.Embed(tokens)             // [rows, dim] residual stream before block 0
//	for b := 0; b < m.Blocks(); b++ {
//		_ = m.RunBlocks(h, b, b+1, hook) // in place: now the input of block b+1
//	}
//	logits, _ := m.Head(h)              // final norm + classifier, as Forward returns them
//
// Block b is decoder layer b (model.layers.b.*): attention then MLP, each added to the
// residual stream. Its linear layers are BlockLinearNames(b); a hook sees their inputs as
// Forward's hook does.

// Hidden is the residual stream of a batch of sequences at a block boundary. X holds the rows
// of every sequence stacked ([Rows, Dim] row-major); the sequence boundaries (fixed by
// Embed) say which rows attend to which. Nothing else is carried between blocks: positions
// restart at 0 in every sequence and there is no KV cache.
type Hidden struct {
	X         []float32
	Rows, Dim int
	offsets   []int // sequence b owns rows [offsets[b], offsets[b+1])
	maxLen    int
}

// Lengths returns the length of each sequence of the batch.
func (h *Hidden) Lengths() []int {
	out := make([]int, len(h.offsets)-1)
	for b := range out {
		out[b] = h.offsets[b+1] - h.offsets[b]
	}
	return out
}

// NewHidden rebuilds a residual stream from its rows x ([sum of lengths, dim], used, not
// copied) and its sequences' lengths: a state stored by a caller (Lengths, X) and read back.
func NewHidden(x []float32, lengths []int, dim int) (*Hidden, error) {
	if len(lengths) == 0 || dim <= 0 {
		return nil, fmt.Errorf("model: hidden state of %d sequences, dim %d", len(lengths), dim)
	}
	h := &Hidden{X: x, Dim: dim, offsets: make([]int, len(lengths)+1)}
	for b, n := range lengths {
		if n <= 0 {
			return nil, fmt.Errorf("model: hidden state sequence %d has length %d", b, n)
		}
		h.offsets[b+1] = h.offsets[b] + n
		h.maxLen = max(h.maxLen, n)
	}
	h.Rows = h.offsets[len(lengths)]
	if len(x) != h.Rows*dim {
		return nil, fmt.Errorf("model: hidden state has %d values for %d rows of %d", len(x), h.Rows, dim)
	}
	return h, nil
}

// Clone returns an independent copy (for example, to keep a block's input while it runs).
func (h *Hidden) Clone() *Hidden {
	c := *h
	c.X = slices.Clone(h.X)
	return &c
}

// Blocks is the number of decoder blocks (Config.Layers).
func (m *Model) Blocks() int { return len(m.layers) }

// BlockLinearNames lists block b's seven linear layers in forward order.
func (m *Model) BlockLinearNames(b int) []string {
	if b < 0 || b >= len(m.layers) {
		return nil
	}
	return slices.Clone(m.layers[b].names[:])
}

// BatchOffsets checks a batch of token sequences for a model of cfg (the batch and each
// sequence non-empty, none longer than MaxSeq, every id in the vocabulary) and returns
// where each sequence starts in the concatenated batch (len(tokens)+1 offsets) and the
// longest length. Errors have no package prefix: the CPU model and the CUDA runner add
// theirs.
func BatchOffsets(cfg checkpoint.LlamaConfig, tokens [][]int) (offsets []int, maxLen int, err error) {
	if len(tokens) == 0 {
		return nil, 0, fmt.Errorf("forward of an empty batch")
	}
	offsets = make([]int, len(tokens)+1)
	for b, seq := range tokens {
		if len(seq) == 0 {
			return nil, 0, fmt.Errorf("sequence %d of the batch is empty", b)
		}
		if cfg.MaxSeq > 0 && len(seq) > cfg.MaxSeq {
			return nil, 0, fmt.Errorf("sequence %d has %d tokens, longer than the model's %d", b, len(seq), cfg.MaxSeq)
		}
		for i, t := range seq {
			if t < 0 || t >= cfg.Vocab {
				return nil, 0, fmt.Errorf("sequence %d position %d: token id %d outside the vocabulary [0, %d)", b, i, t, cfg.Vocab)
			}
		}
		offsets[b+1] = offsets[b] + len(seq)
		maxLen = max(maxLen, len(seq))
	}
	return offsets, maxLen, nil
}

// Embed checks a batch of token sequences (as Forward does) and returns the residual stream
// before block 0: each token's embedding row.
func (m *Model) Embed(tokens [][]int) (*Hidden, error) {
	D := m.Config.Dim
	offsets, maxLen, err := BatchOffsets(m.Config, tokens)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	M := offsets[len(tokens)]
	h := &Hidden{X: make([]float32, M*D), Rows: M, Dim: D, offsets: offsets, maxLen: maxLen}
	for b, seq := range tokens {
		for i, t := range seq {
			m.embed.row(h.X[(offsets[b]+i)*D:(offsets[b]+i+1)*D], t, D)
		}
	}
	return h, nil
}

// RunBlocks runs blocks [from, to) on h in place: h becomes the input of block to (or of
// Head when to == Blocks()). hook, if not nil, sees the input of every linear layer of
// those blocks, as in Forward.
func (m *Model) RunBlocks(h *Hidden, from, to int, hook Hook) error {
	if err := m.checkHidden(h); err != nil {
		return err
	}
	if from < 0 || to > len(m.layers) || from > to {
		return fmt.Errorf("model: blocks [%d, %d) outside [0, %d]", from, to, len(m.layers))
	}
	ws := m.newWorkspace(h)
	ws.x = h.X
	for l := from; l < to; l++ {
		if err := m.LoadBlock(l); err != nil {
			return err
		}
		m.block(ws, &m.layers[l], h, hook, "")
	}
	return nil
}

// ProbeBlock runs block b on a copy of h only as far as the linear layer until: hook sees
// the inputs of the block's linear layers up to and including until's, then the block
// stops. h is not changed. It costs the part of the block before until (nothing but the
// norm for q_proj), which is what a statistic of one layer's input needs when the layers
// before it in the block changed since h was computed.
func (m *Model) ProbeBlock(h *Hidden, b int, until string, hook Hook) error {
	if err := m.checkHidden(h); err != nil {
		return err
	}
	if b < 0 || b >= len(m.layers) {
		return fmt.Errorf("model: block %d outside [0, %d)", b, len(m.layers))
	}
	if !slices.Contains(m.layers[b].names[:], until) {
		return fmt.Errorf("model: %q is not a linear layer of block %d (see BlockLinearNames)", until, b)
	}
	if err := m.LoadBlock(b); err != nil {
		return err
	}
	ws := m.newWorkspace(h)
	ws.x = slices.Clone(h.X)
	m.block(ws, &m.layers[b], h, hook, until)
	return nil
}

// Head applies the final norm and the classifier to h (the output of the last block) and
// returns the logits of every position, split by sequence as Forward returns them.
func (m *Model) Head(h *Hidden) ([][]float32, error) {
	if err := m.checkHidden(h); err != nil {
		return nil, err
	}
	if err := m.ensureHead(); err != nil {
		return nil, err
	}
	D, V, M := m.Config.Dim, m.Config.Vocab, h.Rows
	xb := make([]float32, M*D)
	rmsNorm(xb, h.X, m.finalNorm, M, D, float32(m.Config.NormEps))
	logits := make([]float32, M*V)
	m.classifier.Forward(xb, M, logits)
	out := make([][]float32, len(h.offsets)-1)
	for b := range out {
		lo, hi := h.offsets[b]*V, h.offsets[b+1]*V
		out[b] = logits[lo:hi:hi]
	}
	return out, nil
}

// HeadRows is Head on rows [lo, hi) of h's batch (the rows of every sequence stacked, as
// in h.X): their logits [hi-lo, vocab], flattened across sequences. Every row's logits
// are Head's bits (the norm is per row and each logit one sum in a fixed order), so a
// caller can take a batch's logits in chunks instead of all at once.
func (m *Model) HeadRows(h *Hidden, lo, hi int) ([]float32, error) {
	if err := m.checkHidden(h); err != nil {
		return nil, err
	}
	if lo < 0 || hi > h.Rows || lo >= hi {
		return nil, fmt.Errorf("model: head rows [%d, %d) outside the batch's %d rows", lo, hi, h.Rows)
	}
	if err := m.ensureHead(); err != nil {
		return nil, err
	}
	D, V, M := m.Config.Dim, m.Config.Vocab, hi-lo
	xb := make([]float32, M*D)
	rmsNorm(xb, h.X[lo*D:hi*D], m.finalNorm, M, D, float32(m.Config.NormEps))
	logits := make([]float32, M*V)
	m.classifier.Forward(xb, M, logits)
	return logits, nil
}

func (m *Model) checkHidden(h *Hidden) error {
	if h == nil || len(h.offsets) < 2 || h.Dim != m.Config.Dim || h.Rows != h.offsets[len(h.offsets)-1] || len(h.X) != h.Rows*h.Dim {
		return fmt.Errorf("model: hidden state does not come from this model's Embed (dim %d)", m.Config.Dim)
	}
	return nil
}

func (m *Model) newWorkspace(h *Hidden) *workspace {
	M, D, KV, H := h.Rows, m.Config.Dim, m.Config.KVDim(), m.Config.HiddenDim
	shared := make([]float32, M*max(2*D+2*KV, H))
	q, k := shared[:M*D:M*D], shared[M*D:M*(D+KV):M*(D+KV)]
	v, att := shared[M*(D+KV):M*(D+2*KV):M*(D+2*KV)], shared[M*(D+2*KV):M*(2*D+2*KV):M*(2*D+2*KV)]
	return &workspace{
		xb: make([]float32, M*D), proj: make([]float32, M*D),
		q: q, k: k, v: v, att: att, h1: shared[: M*H : M*H],
		h2: make([]float32, min(M, mlpChunkRows)*H),
	}
}

// block runs one decoder layer on ws.x in place. With stop set, it returns right after the
// hook saw the input of the linear layer stop (ws.x is then left half-updated).
func (m *Model) block(ws *workspace, ly *layer, h *Hidden, hook Hook, stop string) {
	M, D := h.Rows, m.Config.Dim
	eps := float32(m.Config.NormEps)
	cos, sin := m.rope(h.maxLen)
	// run shows linear i its input, then runs it unless it is the stop layer (false: stop).
	run := func(i int, in, out []float32) bool {
		if hook != nil {
			_, k := ly.lin[i].Dims()
			hook(ly.names[i], in[:M*k], M, k)
		}
		if ly.names[i] == stop {
			return false
		}
		ly.lin[i].Forward(in, M, out)
		return true
	}
	rmsNorm(ws.xb, ws.x, ly.attnNorm, M, D, eps)
	if !run(linQ, ws.xb, ws.q) || !run(linK, ws.xb, ws.k) || !run(linV, ws.xb, ws.v) {
		return
	}
	m.applyRope(ws.q, ws.k, h.offsets, cos, sin)
	m.attention(ws, h.offsets, h.maxLen)
	if !run(linO, ws.att, ws.proj) {
		return
	}
	addInPlace(ws.x, ws.proj)

	rmsNorm(ws.xb, ws.x, ly.ffnNorm, M, D, eps)
	if !run(linGate, ws.xb, ws.h1) {
		return
	}
	// up_proj (its hook sees the whole input first) and the SiLU product, a chunk of rows
	// at a time.
	if hook != nil {
		hook(ly.names[linUp], ws.xb[:M*D], M, D)
	}
	if ly.names[linUp] == stop {
		return
	}
	H, c := m.Config.HiddenDim, len(ws.h2)/m.Config.HiddenDim
	for r0 := 0; r0 < M; r0 += c {
		r1 := min(r0+c, M)
		ly.lin[linUp].Forward(ws.xb[r0*D:r1*D], r1-r0, ws.h2)
		siluMul(ws.h1[r0*H:r1*H], ws.h2[:(r1-r0)*H], m.exp64)
	}
	if !run(linDown, ws.h1, ws.proj) {
		return
	}
	addInPlace(ws.x, ws.proj)
}
