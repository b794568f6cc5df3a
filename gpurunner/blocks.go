//go:build cuda

package gpurunner

// BlockRunner: the streaming pipeline's forward passes on the GPU, one decoder block
// resident at a time (model.BlockRunner).
//
// Layout on the device while it runs:
//   - resident for the runner's life: the final norm (F32 [D]) and the classifier (F16
//     [V, D]; the embedding when tied), the activation buffers of the largest batch seen
//     and the RoPE tables (ModelRunner's);
//   - one decoder block at a time: its norms (F32) and seven linear layers as F16 weights,
//     read from the host model as they are when the block runs (a plugged quantized layer
//     runs as its dequantized weights, with the per-token fake int8 input of a W8A8 layer:
//     the numbers the CPU model's FakeQuant/QuantLinear compute, in F16 arithmetic);
//   - one blockState per batch at a block boundary: the residual stream (F32 [M, D]) and
//     the batch's positions and sequence offsets (int32 [M] and [nseq+1]).
//
// The embedding lookup runs on the host (the model's table, no device copy: the pipeline
// embeds each window once). A block with a layer this path does not run (static activation
// quantization, an unknown Linear, weights beyond F16's range) runs on the host model
// instead: its state is copied down, run there and copied back, so the numbers stay the
// reference's.

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// BlockRunner runs a host model's blocks on one GPU (see the file comment); it sums GPTQ's
// Hessians on the device too (blocks_gram.go).
type BlockRunner struct {
	r        *ModelRunner // kernels, activations, rope, head; r.layers[b] holds block b while resident
	m        *model.Model
	resident int           // the block on the device (-1: none)
	bufs     []*cgo.Buffer // the resident block's weights
	onHost   string        // why the resident block runs on the host ("" : it runs here)
	grams    map[string]*gramSum
	gramErr  error // the first error of a host block's Gram hook
}

// blockState is one batch's residual stream on the device.
type blockState struct {
	x       *cgo.Buffer // F32 [M, D]
	ints    *cgo.Buffer // int32 positions [M], then offsets [nseq+1]
	bt      batch
	lengths []int
}

// NewBlockRunner uploads m's final norm and classifier to device dev.
func NewBlockRunner(dev int, m *model.Model) (*BlockRunner, error) {
	r, err := newRunner(dev, m.Config)
	if err != nil {
		return nil, err
	}
	br := &BlockRunner{r: r, m: m, resident: -1}
	cls := "lm_head.weight"
	if m.Config.TiedEmbeddings {
		cls = "model.embed_tokens.weight"
	}
	w, err := r.weightF32(m, cls)
	if err == nil {
		r.cls, err = r.uploadF16(cls, w)
	}
	if err == nil {
		if w, err = r.weightF32(m, "model.norm.weight"); err == nil {
			r.fnorm, err = r.uploadBytes("model.norm.weight", cgo.AsBytes(w))
		}
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	r.layers = make([]devLayer, m.Config.Layers)
	return br, nil
}

func (br *BlockRunner) stateOf(st model.BlockState) (*blockState, error) {
	s, ok := st.(*blockState)
	if !ok || s == nil || s.x == nil {
		return nil, fmt.Errorf("cuda blocks: state %T is not a live device state of this runner", st)
	}
	return s, nil
}

// newState uploads x (F32 [rows, D]) for sequences of the given lengths.
func (br *BlockRunner) newState(x []float32, lengths []int) (*blockState, error) {
	offsets := make([]int, len(lengths)+1)
	maxLen := 0
	for i, n := range lengths {
		offsets[i+1] = offsets[i] + n
		maxLen = max(maxLen, n)
	}
	M := offsets[len(lengths)]
	D := br.m.Config.Dim
	if len(x) != M*D || M == 0 {
		return nil, fmt.Errorf("cuda blocks: %d values for %d rows of width %d", len(x), M, D)
	}
	ints := make([]int32, 0, M+len(offsets))
	for _, n := range lengths {
		for p := 0; p < n; p++ {
			ints = append(ints, int32(p))
		}
	}
	for _, o := range offsets {
		ints = append(ints, int32(o))
	}
	s := &blockState{bt: batch{M: M, nseq: len(lengths), maxLen: maxLen, offsets: offsets}, lengths: lengths}
	var err error
	if s.x, err = br.r.uploadTmp("residual stream", cgo.AsBytes(x)); err != nil {
		return nil, err
	}
	if s.ints, err = br.r.uploadTmp("positions", cgo.AsBytes(ints)); err != nil {
		s.x.Close()
		return nil, err
	}
	return s, nil
}

// Embed looks the tokens up on the host and uploads the residual stream.
func (br *BlockRunner) Embed(tokens [][]int) (model.BlockState, error) {
	h, err := br.m.Embed(tokens)
	if err != nil {
		return nil, err
	}
	return br.newState(h.X, h.Lengths())
}

// FromHost uploads a host state.
func (br *BlockRunner) FromHost(h *model.Hidden) (model.BlockState, error) {
	return br.newState(h.X, h.Lengths())
}

// ToHost downloads st.
func (br *BlockRunner) ToHost(st model.BlockState) (*model.Hidden, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	x := make([]float32, s.bt.M*br.m.Config.Dim)
	if err := s.x.CopyToHost(cgo.AsBytes(x), 0); err != nil {
		return nil, fmt.Errorf("cuda blocks: residual stream: %w", err)
	}
	return model.NewHidden(x, s.lengths, br.m.Config.Dim)
}

// Clone copies st on the device.
func (br *BlockRunner) Clone(st model.BlockState) (model.BlockState, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	c := &blockState{bt: s.bt, lengths: s.lengths}
	if c.x, err = cgo.Alloc(br.r.dev, s.x.Size()); err != nil {
		return nil, fmt.Errorf("cuda blocks: clone: %w", err)
	}
	if c.ints, err = cgo.Alloc(br.r.dev, s.ints.Size()); err != nil {
		c.x.Close()
		return nil, fmt.Errorf("cuda blocks: clone: %w", err)
	}
	if err := c.x.CopyFrom(0, s.x, 0, s.x.Size()); err != nil {
		br.Free(c)
		return nil, err
	}
	if err := c.ints.CopyFrom(0, s.ints, 0, s.ints.Size()); err != nil {
		br.Free(c)
		return nil, err
	}
	return c, nil
}

// Lengths is the length of each sequence of st's batch.
func (br *BlockRunner) Lengths(st model.BlockState) ([]int, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	return s.lengths, nil
}

// Free releases st's device memory.
func (br *BlockRunner) Free(st model.BlockState) {
	if s, ok := st.(*blockState); ok && s != nil {
		s.x.Close()
		s.ints.Close()
		s.x, s.ints = nil, nil
	}
}

// Invalidate drops block b from the device when it is resident (its layers changed).
func (br *BlockRunner) Invalidate(b int) {
	if br.resident == b {
		br.evict()
	}
}

func (br *BlockRunner) evict() {
	for _, b := range br.bufs {
		b.Close()
	}
	if br.resident >= 0 {
		br.r.layers[br.resident] = devLayer{}
	}
	br.bufs, br.resident, br.onHost = nil, -1, ""
}

// Info describes the device.
func (br *BlockRunner) Info() backend.DeviceInfo { return br.r.Info() }

// Close frees every device buffer the runner holds (states are the caller's to Free).
func (br *BlockRunner) Close() error {
	br.evict()
	br.freeGrams()
	return br.r.Close()
}

// Head applies the final norm and the classifier on the device and downloads the logits.
func (br *BlockRunner) Head(st model.BlockState) ([][]float32, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	r, M := br.r, s.bt.M
	D, V := r.cfg.Dim, r.cfg.Vocab
	if err := r.ensureActs(M); err != nil {
		return nil, err
	}
	if err := cgo.RMSNormDev(r.dev, s.x, r.fnorm, M, D, float32(r.cfg.NormEps), r.xb); err != nil {
		return nil, fmt.Errorf("cuda blocks: final norm: %w", err)
	}
	if err := cgo.GemmF16F32OutDev(r.dev, r.xb, r.cls, M, V, D, r.logits); err != nil {
		return nil, fmt.Errorf("cuda blocks: classifier: %w", err)
	}
	all := make([]float32, M*V)
	if err := r.logits.CopyToHost(cgo.AsBytes(all), 0); err != nil {
		return nil, fmt.Errorf("cuda blocks: logits: %w", err)
	}
	out := make([][]float32, s.bt.nseq)
	for i := range out {
		lo, hi := s.bt.offsets[i]*V, s.bt.offsets[i+1]*V
		out[i] = all[lo:hi:hi]
	}
	return out, nil
}

// HeadRows is Head on rows [lo, hi) of the batch: the final norm and the classifier on a
// view of those rows of the residual stream, M = hi-lo, downloading hi-lo rows of logits.
func (br *BlockRunner) HeadRows(st model.BlockState, lo, hi int) ([]float32, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	if lo < 0 || hi > s.bt.M || lo >= hi {
		return nil, fmt.Errorf("cuda blocks: head rows [%d, %d) outside the batch's %d rows", lo, hi, s.bt.M)
	}
	r, M := br.r, hi-lo
	D, V := r.cfg.Dim, r.cfg.Vocab
	if err := r.ensureActs(M); err != nil {
		return nil, err
	}
	x, err := s.x.View(4*lo*D, 4*M*D)
	if err != nil {
		return nil, fmt.Errorf("cuda blocks: head rows: %w", err)
	}
	if err := cgo.RMSNormDev(r.dev, x, r.fnorm, M, D, float32(r.cfg.NormEps), r.xb); err != nil {
		return nil, fmt.Errorf("cuda blocks: final norm: %w", err)
	}
	if err := cgo.GemmF16F32OutDev(r.dev, r.xb, r.cls, M, V, D, r.logits); err != nil {
		return nil, fmt.Errorf("cuda blocks: classifier: %w", err)
	}
	out := make([]float32, M*V)
	if err := r.logits.CopyToHost(cgo.AsBytes(out), 0); err != nil {
		return nil, fmt.Errorf("cuda blocks: logits: %w", err)
	}
	return out, nil
}

// RunBlock runs block b on st (see model.BlockRunner).
func (br *BlockRunner) RunBlock(st model.BlockState, b int, hook model.Hook, until string) error {
	s, err := br.loaded(st, b)
	if err != nil {
		return err
	}
	if br.onHost != "" {
		return br.runOnHost(s, b, hook, until)
	}
	return br.runDevice(s, b, hostObserver(hook), until)
}

// loaded checks st and makes block b the resident one (RunBlock, RunBlockGram).
func (br *BlockRunner) loaded(st model.BlockState, b int) (*blockState, error) {
	s, err := br.stateOf(st)
	if err != nil {
		return nil, err
	}
	return s, br.load(b)
}

// runDevice runs resident block b on s with obs (see RunBlock).
func (br *BlockRunner) runDevice(s *blockState, b int, obs observer, until string) error {
	r, M, D := br.r, s.bt.M, br.m.Config.Dim
	ly := &r.layers[b]
	var stop *devLinear
	if until != "" {
		for _, l := range ly.lin {
			if l.name == until {
				stop = l
			}
		}
		if stop == nil {
			return fmt.Errorf("cuda blocks: %q is not a linear layer of block %d (see BlockLinearNames)", until, b)
		}
	}
	if err := r.ensureActs(M); err != nil {
		return err
	}
	if err := r.ensureRope(s.bt.maxLen); err != nil {
		return err
	}
	x := s.x
	if stop != nil { // a probe runs on a copy: r.x is free scratch of [M, D] F32
		if err := r.x.CopyFrom(0, s.x, 0, 4*M*D); err != nil {
			return err
		}
		x = r.x
	}
	pos, err := s.ints.View(0, 4*M)
	if err != nil {
		return err
	}
	offs, err := s.ints.View(4*M, 4*(s.bt.nseq+1))
	if err != nil {
		return err
	}
	r.aqOf = nil
	if err := r.runLayer(b, ly, layerRun{x: x, pos: pos, offs: offs, bt: &s.bt, obs: obs, until: stop}); err != nil {
		return fmt.Errorf("cuda blocks: %w", err)
	}
	return cgo.Synchronize(r.dev)
}

// hostObserver hands each observed input to hook as float32 on the host.
func hostObserver(hook model.Hook) observer {
	if hook == nil {
		return nil
	}
	return func(names []string, x *cgo.Buffer, M, K int) error {
		h := make([]uint16, M*K)
		if err := x.CopyToHost(cgo.AsBytes(h), 0); err != nil {
			return err
		}
		v := tensor.F16ToF32Slice(nil, h)
		for _, n := range names {
			hook(n, v, M, K)
		}
		return nil
	}
}

// runOnHost runs block b on the host model: the state goes down, and back unless a probe.
func (br *BlockRunner) runOnHost(s *blockState, b int, hook model.Hook, until string) error {
	h, err := br.ToHost(s)
	if err != nil {
		return err
	}
	if until != "" {
		return br.m.ProbeBlock(h, b, until, hook)
	}
	if err := br.m.RunBlocks(h, b, b+1, hook); err != nil {
		return err
	}
	return s.x.CopyFromHost(0, cgo.AsBytes(h.X))
}

// load makes block b the resident one: its norms and linear layers as the host model has
// them now, or onHost set to why the block runs on the host.
func (br *BlockRunner) load(b int) error {
	if b < 0 || b >= br.m.Blocks() {
		return fmt.Errorf("cuda blocks: block %d outside [0, %d)", b, br.m.Blocks())
	}
	if br.resident == b {
		return nil
	}
	br.evict()
	br.resident = b
	r := br.r
	ly := &r.layers[b]
	p := fmt.Sprintf("model.layers.%d.", b)
	for _, nw := range []struct {
		name string
		dst  **cgo.Buffer
	}{{p + "input_layernorm.weight", &ly.attnNorm}, {p + "post_attention_layernorm.weight", &ly.ffnNorm}} {
		w, err := r.weightF32(br.m, nw.name)
		if err != nil {
			br.evict()
			return err
		}
		if *nw.dst, err = br.upload(nw.name, cgo.AsBytes(w)); err != nil {
			br.evict()
			return err
		}
	}
	for i, name := range br.m.BlockLinearNames(b) {
		l, why, err := br.linearOf(name)
		if err != nil {
			br.evict()
			return err
		}
		if why != "" {
			br.evictWeights()
			br.onHost = why
			return nil
		}
		ly.lin[i] = l
	}
	return nil
}

// evictWeights frees what load uploaded but keeps block b marked resident (it runs on the host).
func (br *BlockRunner) evictWeights() {
	for _, b := range br.bufs {
		b.Close()
	}
	br.bufs = nil
	br.r.layers[br.resident] = devLayer{}
}

func (br *BlockRunner) upload(what string, data []byte) (*cgo.Buffer, error) {
	b, err := br.r.uploadTmp(what, data)
	if err == nil {
		br.bufs = append(br.bufs, b)
	}
	return b, err
}

// linearOf uploads the host model's layer name as F16 weights, or says why it cannot run
// here (why != "").
func (br *BlockRunner) linearOf(name string) (l *devLinear, why string, err error) {
	var w, bias []float32
	var n, k int
	fakeAct := false
	switch t := br.m.Linear(name).(type) {
	case *model.Dense:
		w, bias, n, k = t.Weights(), t.Bias, t.N, t.K
	case *model.FakeQuant:
		w, bias, n, k = t.Weights(), t.Bias, t.N, t.K
		switch t.Act {
		case quant.ActDynamic:
			fakeAct = true
		case quant.ActStatic:
			return nil, "static activation quantization of " + name, nil
		}
	case *model.QuantLinear:
		n, k, bias, fakeAct = t.N, t.K, t.Bias, t.W8A8
		deq := quant.Dequantize(t.Q)
		w = make([]float32, n*k)
		for row := 0; row < n; row++ { // drop the padding columns
			copy(w[row*k:(row+1)*k], deq[row*t.Q.Cols:row*t.Q.Cols+k])
		}
	case nil:
		return nil, "", fmt.Errorf("cuda blocks: the model has no linear layer %s", name)
	default:
		return nil, fmt.Sprintf("%s is a %T", name, t), nil
	}
	for _, v := range w {
		if math.Abs(float64(v)) > 65504 {
			return nil, name + " has weights beyond F16's range", nil
		}
	}
	l = &devLinear{name: name, N: n, K: k, kind: kindF16, label: "cublas-f16", fakeAct: fakeAct}
	if l.w16, err = br.upload(name+".weight", cgo.AsBytes(tensor.F32ToF16Slice(w))); err != nil {
		return nil, "", err
	}
	if bias != nil {
		if l.bias, err = br.upload(name+".bias", cgo.AsBytes(bias)); err != nil {
			return nil, "", err
		}
	}
	return l, "", nil
}

var _ model.GramBlockRunner = (*BlockRunner)(nil)
