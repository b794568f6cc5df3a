//go:build cuda

package gpurunner

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
)

// fill kinds of cgo.FillRandom.
const (
	fillBytes      = cgo.FillBytes
	fillF16Sym     = cgo.FillF16Sym
	fillF32Pos     = cgo.FillF32Pos
	fillF16Pos     = cgo.FillF16Pos
	fillF16Nibbles = cgo.FillF16Nibbles
)

// fill allocates n elements of elemBytes and fills them on the device.
func (r *ModelRunner) fill(n, elemBytes int, kind cgo.FillKind, amp float32, seed uint64) (*cgo.Buffer, error) {
	b, err := r.alloc(n * elemBytes)
	if err != nil {
		return nil, fmt.Errorf("cuda synthetic model: %w", err)
	}
	if err := cgo.FillRandom(b, n, kind, amp, seed); err != nil {
		return nil, fmt.Errorf("cuda synthetic model: %w", err)
	}
	return b, nil
}

// NewSyntheticModelRunner builds a runner of architecture cfg whose weights are random and
// generated on the device (no host copy), for benchmarks of real model shapes: weights
// uniform with variance ~1/K so activations keep their scale, norms in [1/8, 1]. scheme nil:
// F16 everywhere; else every linear layer uses it and must fit a kernel (W8A8 with
// per-channel weights, or 4-bit weight-only with shapes the W4A16 kernel takes).
func NewSyntheticModelRunner(dev int, cfg checkpoint.LlamaConfig, scheme *quant.Recipe, seed uint64) (*ModelRunner, error) {
	r, err := newRunner(dev, cfg)
	if err != nil {
		return nil, err
	}
	if err := r.synthesize(scheme, seed); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *ModelRunner) synthesize(scheme *quant.Recipe, seed uint64) error {
	cfg := r.cfg
	D, KV, H, V := cfg.Dim, cfg.KVDim(), cfg.HiddenDim, cfg.Vocab
	next := func() uint64 { seed++; return seed }
	var err error
	if r.embed, err = r.fill(V*D, 2, fillF16Sym, 1.7, next()); err != nil {
		return err
	}
	r.cls = r.embed
	if !cfg.TiedEmbeddings {
		if r.cls, err = r.fill(V*D, 2, fillF16Sym, float32(math.Sqrt(3/float64(D))), next()); err != nil {
			return err
		}
	}
	if r.fnorm, err = r.fill(D, 4, fillF32Pos, 1, next()); err != nil {
		return err
	}
	shapes := [7][2]int{{D, D}, {KV, D}, {KV, D}, {D, D}, {H, D}, {H, D}, {D, H}}
	r.layers = make([]devLayer, cfg.Layers)
	for l := range r.layers {
		ly := &r.layers[l]
		if ly.attnNorm, err = r.fill(D, 4, fillF32Pos, 1, next()); err != nil {
			return err
		}
		if ly.ffnNorm, err = r.fill(D, 4, fillF32Pos, 1, next()); err != nil {
			return err
		}
		for i := range ly.lin {
			N, K := shapes[i][0], shapes[i][1]
			name := fmt.Sprintf("model.layers.%d.%s", l, synthSuffixes[i])
			if ly.lin[i], err = r.synthLinear(name, N, K, scheme, next()); err != nil {
				return err
			}
		}
	}
	return nil
}

var synthSuffixes = [7]string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

func (r *ModelRunner) synthLinear(name string, N, K int, sch *quant.Recipe, seed uint64) (*devLinear, error) {
	l := &devLinear{name: name, N: N, K: K, kind: kindF16, label: "cublas-f16"}
	amp := float32(math.Sqrt(3 / float64(K))) // uniform [-amp, amp]: variance 1/K
	var err error
	if sch == nil {
		l.w16, err = r.fill(N*K, 2, fillF16Sym, amp, seed)
		return l, err
	}
	if reason := kernelReason(name, N, K, sch, false); reason != "" {
		return nil, fmt.Errorf("cuda synthetic model: %s: %s", name, reason)
	}
	if sch.Act == quant.ActDynamic {
		// Random int8 levels have standard deviation ~74: scales ~ amp/74/sqrt(3).
		if l.w8, err = r.fill(N*K, 1, fillBytes, 0, seed); err != nil {
			return nil, err
		}
		if l.w8s, err = r.fill(N, 4, fillF32Pos, amp/64, seed+1); err != nil {
			return nil, err
		}
		l.kind, l.label = kindW8A8, "w8a8"
		return l, nil
	}
	group := K
	if sch.Weight.Granularity == quant.PerGroup {
		group = sch.Weight.GroupSize
	}
	if l.w4, err = r.fill(N*K/2, 1, fillBytes, 0, seed); err != nil {
		return nil, err
	}
	if l.w4s, err = r.fill(N*K/group, 2, fillF16Pos, amp/4, seed+1); err != nil {
		return nil, err
	}
	if !sch.Weight.Symmetric {
		if l.w4z, err = r.fill(N*K/group, 2, fillF16Nibbles, 0, seed+2); err != nil {
			return nil, err
		}
	}
	l.kind, l.group, l.label = kindW4A16, group, fmt.Sprintf("w4a16-g%d", group)
	return l, nil
}
