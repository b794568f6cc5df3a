//go:build cuda

package gpurunner

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/model"
)

// observer sees one linear input (F16 [M, K] on the device), shared by names.
type observer func(names []string, x *cgo.Buffer, M, K int) error

// batch is a prepared Forward call: the token ids, positions and offsets on the device.
type batch struct {
	M, nseq, maxLen int
	offsets         []int
}

// ensureActs (re)allocates the activation buffers for M rows.
func (r *ModelRunner) ensureActs(M int) error {
	if M <= r.actM {
		return nil
	}
	for _, b := range []*cgo.Buffer{r.x, r.xb, r.q, r.k, r.v, r.att, r.proj, r.h1, r.h2, r.aq, r.ascale, r.fake, r.logits} {
		if err := b.Close(); err != nil {
			return err
		}
	}
	r.actM = 0
	D, KV, H, V := r.cfg.Dim, r.cfg.KVDim(), r.cfg.HiddenDim, r.cfg.Vocab
	mx := max(D, H)
	sizes := []struct {
		dst **cgo.Buffer
		n   int
	}{{&r.x, 4 * M * D}, {&r.xb, 2 * M * D}, {&r.q, 2 * M * D}, {&r.k, 2 * M * KV}, {&r.v, 2 * M * KV},
		{&r.att, 2 * M * D}, {&r.proj, 2 * M * D}, {&r.h1, 2 * M * H}, {&r.h2, 2 * M * H},
		{&r.aq, M * mx}, {&r.ascale, 4 * M}, {&r.fake, 2 * M * mx}, {&r.logits, 4 * M * V}}
	for _, s := range sizes {
		b, err := cgo.Alloc(r.dev, max(s.n, 16))
		if err != nil {
			return fmt.Errorf("cuda model: activations for %d tokens: %w", M, err)
		}
		*s.dst = b
	}
	r.actM = M
	return nil
}

// ensureRope builds the cos/sin tables for n positions, exactly as the CPU runner does.
func (r *ModelRunner) ensureRope(n int) error {
	if n <= r.ropeLen {
		return nil
	}
	hd := r.cfg.HeadDim()
	half := hd / 2
	cos := make([]float32, n*half)
	sin := make([]float32, n*half)
	for i := 0; i < half; i++ {
		freq := 1 / math.Pow(r.cfg.RopeTheta, float64(2*i)/float64(hd))
		for p := 0; p < n; p++ {
			a := float64(p) * freq
			cos[p*half+i] = float32(math.Cos(a))
			sin[p*half+i] = float32(math.Sin(a))
		}
	}
	r.cos.Close()
	r.sin.Close()
	r.cos, r.sin, r.ropeLen = nil, nil, 0
	var err error
	if r.cos, err = r.uploadTmp("rope cos", cgo.AsBytes(cos)); err != nil {
		return err
	}
	if r.sin, err = r.uploadTmp("rope sin", cgo.AsBytes(sin)); err != nil {
		return err
	}
	r.ropeLen = n
	return nil
}

// uploadTmp uploads data to a buffer the caller frees (not in r.owned).
func (r *ModelRunner) uploadTmp(what string, data []byte) (*cgo.Buffer, error) {
	b, err := cgo.Alloc(r.dev, max(len(data), 16))
	if err != nil {
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	if err := b.CopyFromHost(0, data); err != nil {
		b.Close()
		return nil, fmt.Errorf("cuda model: %s: %w", what, err)
	}
	return b, nil
}

// prepare validates tokens (as model.Forward does) and uploads ids, positions and offsets
// into r.ints ([M] ids, [M] positions, [nseq+1] offsets, int32).
func (r *ModelRunner) prepare(tokens [][]int) (*batch, error) {
	if r.closed {
		return nil, fmt.Errorf("cuda model: forward on a closed runner")
	}
	cfg := r.cfg
	if len(tokens) > 65535 {
		return nil, fmt.Errorf("cuda model: batch of %d sequences exceeds 65535", len(tokens))
	}
	offsets, maxLen, err := model.BatchOffsets(cfg, tokens)
	if err != nil {
		return nil, fmt.Errorf("cuda model: %w", err)
	}
	bt := &batch{nseq: len(tokens), offsets: offsets, maxLen: maxLen}
	bt.M = bt.offsets[bt.nseq]
	if bt.M > math.MaxInt32/max(cfg.Vocab, cfg.HiddenDim) {
		return nil, fmt.Errorf("cuda model: %d tokens in one forward is too many", bt.M)
	}
	ints := make([]int32, 0, 2*bt.M+bt.nseq+1)
	for _, seq := range tokens {
		for _, t := range seq {
			ints = append(ints, int32(t))
		}
	}
	for _, seq := range tokens {
		for p := range seq {
			ints = append(ints, int32(p))
		}
	}
	for _, o := range bt.offsets {
		ints = append(ints, int32(o))
	}
	if err := r.ensureActs(bt.M); err != nil {
		return nil, err
	}
	if err := r.ensureRope(bt.maxLen); err != nil {
		return nil, err
	}
	if r.ints == nil || r.ints.Size() < 4*len(ints) {
		r.ints.Close()
		var err error
		if r.ints, err = cgo.Alloc(r.dev, 4*len(ints)); err != nil {
			return nil, fmt.Errorf("cuda model: token ids: %w", err)
		}
	}
	if err := r.ints.CopyFromHost(0, cgo.AsBytes(ints)); err != nil {
		return nil, fmt.Errorf("cuda model: token ids: %w", err)
	}
	if err := r.ensureScratch(bt.M); err != nil {
		return nil, err
	}
	return bt, nil
}

// compute runs the prefill of bt, leaving F32 logits [M, V] in r.logits.
func (r *ModelRunner) compute(bt *batch, obs observer) error {
	D, V := r.cfg.Dim, r.cfg.Vocab
	M := bt.M
	eps := float32(r.cfg.NormEps)
	ids, err := r.ints.View(0, 4*M)
	if err != nil {
		return err
	}
	pos, err := r.ints.View(4*M, 4*M)
	if err != nil {
		return err
	}
	offs, err := r.ints.View(8*M, 4*(bt.nseq+1))
	if err != nil {
		return err
	}
	r.aqOf = nil
	if err := cgo.EmbedDev(r.dev, r.embed, ids, M, D, V, r.x); err != nil {
		return err
	}
	for li := range r.layers {
		if err := r.runLayer(li, &r.layers[li], layerRun{x: r.x, pos: pos, offs: offs, bt: bt, obs: obs}); err != nil {
			return err
		}
	}
	if err := r.rmsnorm(r.x, r.fnorm, M, D, eps, r.xb); err != nil {
		return err
	}
	return cgo.GemmF16F32OutDev(r.dev, r.xb, r.cls, M, V, D, r.logits)
}

// layerRun is what one decoder layer runs on: the residual stream x (F32 [M, D]) of batch
// bt, whose positions and sequence offsets (int32) are pos and offs on the device.
type layerRun struct {
	x, pos, offs *cgo.Buffer
	bt           *batch
	obs          observer
	until        *devLinear // stop once this layer's input has been observed (nil: the whole layer)
}

// errUntil ends a layer run at layerRun.until.
var errUntil = errors.New("until")

// runLayer runs decoder layer li (weights ly) on lr.x in place, showing every linear input
// to lr.obs (layers reading one input share one call, in the CPU model's order).
func (r *ModelRunner) runLayer(li int, ly *devLayer, lr layerRun) error {
	cfg := r.cfg
	D, H, hd := cfg.Dim, cfg.HiddenDim, cfg.HeadDim()
	M, bt, x := lr.bt.M, lr.bt, lr.x
	eps := float32(cfg.NormEps)
	see := func(in *cgo.Buffer, K int, lins ...*devLinear) error {
		if lr.obs != nil {
			names := make([]string, len(lins))
			for i, l := range lins {
				names[i] = l.name
			}
			if err := lr.obs(names, in, M, K); err != nil {
				return err
			}
		}
		if lr.until != nil && slices.Contains(lins, lr.until) {
			return errUntil
		}
		return nil
	}
	lq, lk, lv, lo, lg, lu, ld := ly.lin[0], ly.lin[1], ly.lin[2], ly.lin[3], ly.lin[4], ly.lin[5], ly.lin[6]
	steps := []func() error{
		func() error { return r.rmsnorm(x, ly.attnNorm, M, D, eps, r.xb, lq, lk, lv) },
		func() error { return see(r.xb, D, lq, lk, lv) },
		func() error { return r.linear(lq, r.xb, r.q, M) },
		func() error { return r.linear(lk, r.xb, r.k, M) },
		func() error { return r.linear(lv, r.xb, r.v, M) },
		func() error {
			return cgo.RoPEDev(r.dev, r.q, r.k, lr.pos, r.cos, r.sin, r.ropeLen, M, cfg.Heads, cfg.KVHeads, hd)
		},
		func() error {
			r.aqOf = nil // att is rewritten
			return cgo.AttentionDev(r.dev, r.q, r.k, r.v, lr.offs, bt.nseq, bt.maxLen, M, cfg.Heads, cfg.KVHeads, hd, r.att)
		},
		func() error { return see(r.att, D, lo) },
		func() error { return r.linear(lo, r.att, r.proj, M) },
		func() error { return cgo.ResidualAddDev(r.dev, x, r.proj, M*D) },
		func() error { return r.rmsnorm(x, ly.ffnNorm, M, D, eps, r.xb, lg, lu) },
		func() error { return see(r.xb, D, lg, lu) },
		func() error { return r.linear(lg, r.xb, r.h1, M) },
		func() error { return r.linear(lu, r.xb, r.h2, M) },
		func() error { return r.swiglu(r.h1, r.h2, M, H, ld) },
		func() error { return see(r.h1, H, ld) },
		func() error { return r.linear(ld, r.h1, r.proj, M) },
		func() error { return cgo.ResidualAddDev(r.dev, x, r.proj, M*D) },
	}
	for _, s := range steps {
		if err := s(); err == errUntil {
			return nil
		} else if err != nil {
			return fmt.Errorf("layer %d: %w", li, err)
		}
	}
	return nil
}

// run prepares, computes and downloads the logits.
func (r *ModelRunner) run(tokens [][]int, obs observer) ([][]float32, error) {
	bt, err := r.prepare(tokens)
	if err != nil {
		return nil, err
	}
	if err := r.compute(bt, obs); err != nil {
		return nil, err
	}
	V := r.cfg.Vocab
	all := make([]float32, bt.M*V)
	if err := r.logits.CopyToHost(cgo.AsBytes(all), 0); err != nil {
		return nil, fmt.Errorf("cuda model: logits: %w", err)
	}
	out := make([][]float32, bt.nseq)
	for b := range out {
		out[b] = all[bt.offsets[b]*V : bt.offsets[b+1]*V : bt.offsets[b+1]*V]
	}
	return out, nil
}

// Forward runs the prefill and returns F32 logits per sequence ([len, vocab] each). A
// non-nil hook receives every linear input copied to the host (F16 values widened to F32).
func (r *ModelRunner) Forward(tokens [][]int, hook model.Hook) ([][]float32, error) {
	return r.run(tokens, hostObserver(hook))
}
