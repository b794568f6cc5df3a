//go:build cuda

package gpurunner

// The block runner's Gram sums (model.GramBlockRunner): GPTQ's Hessians of a block's linear
// inputs summed on the device (cgo.HessianAddF16Dev: the F16 activations widened exactly,
// float64 products by cuBLAS), one [K, K] float64 sum per input, downloaded once per block
// rather than copying every batch's activations to the host. A block that runs on the host
// (runOnHost) sums its inputs there with gptq.Hessian, under the same keys.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/autoq/autoq/cgo"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
)

// gramSum is one input's running sum: on the device (dev) or, for a host block, on the host.
type gramSum struct {
	names  []string // the wanted layers reading the input
	k      int
	tokens int64
	dev    *cgo.Buffer
	host   *gptq.Hessian
}

// gram returns the sum for names (created empty on first use), keyed by its first layer.
func (br *BlockRunner) gram(names []string, k int) (*gramSum, error) {
	if br.grams == nil {
		br.grams = map[string]*gramSum{}
	}
	g := br.grams[names[0]]
	if g == nil {
		g = &gramSum{names: names, k: k}
		br.grams[names[0]] = g
	}
	if g.k != k || !slices.Equal(g.names, names) {
		return nil, fmt.Errorf("cuda blocks: the input of %s changed width or sharing (%d %v, was %d %v)", names[0], k, names, g.k, g.names)
	}
	return g, nil
}

func wanted(names []string, want func(string) bool) []string {
	var out []string
	for _, n := range names {
		if want(n) {
			out = append(out, n)
		}
	}
	return out
}

// RunBlockGram is RunBlock that also sums X^T X of the wanted layers' inputs.
func (br *BlockRunner) RunBlockGram(st model.BlockState, b int, hook model.Hook, until string, want func(string) bool) error {
	s, err := br.loaded(st, b)
	if err != nil {
		return err
	}
	if br.onHost != "" {
		return br.runOnHost(s, b, br.hostGramHook(hook, want), until)
	}
	host := hostObserver(hook)
	obs := func(names []string, x *cgo.Buffer, M, K int) error {
		if w := wanted(names, want); len(w) > 0 {
			g, err := br.gram(w, K)
			if err != nil {
				return err
			}
			if g.dev == nil {
				if g.dev, err = cgo.Alloc(br.r.dev, 8*K*K); err != nil {
					return fmt.Errorf("cuda blocks: Hessian of %s (%d x %d float64): %w", w[0], K, K, err)
				}
				if err := g.dev.Memset(0, 8*K*K, 0); err != nil {
					return err
				}
			}
			if err := cgo.HessianAddF16Dev(br.r.dev, x, M, K, g.dev); err != nil {
				return fmt.Errorf("cuda blocks: Hessian of %s: %w", w[0], err)
			}
			g.tokens += int64(M)
		}
		if host != nil {
			return host(names, x, M, K)
		}
		return nil
	}
	return br.runDevice(s, b, obs, until)
}

// hostGramHook sums the wanted inputs of a host block (layers sharing an input get one call
// of the same slice from the CPU model) and passes every input on to hook.
func (br *BlockRunner) hostGramHook(hook model.Hook, want func(string) bool) model.Hook {
	var lastX *float32
	var last *gramSum
	return func(name string, x []float32, M, K int) {
		if hook != nil {
			hook(name, x, M, K)
		}
		if br.gramErr != nil || !want(name) || len(x) == 0 {
			return
		}
		if &x[0] == lastX && last != nil { // the same input as the layer before
			if !slices.Contains(last.names, name) {
				last.names = append(last.names, name)
			}
			return
		}
		g := br.grams[name]
		if g == nil {
			var err error
			if g, err = br.gram([]string{name}, K); err != nil {
				br.gramErr = err
				return
			}
		}
		if g.host == nil {
			h, err := gptq.NewHessian(K)
			if err != nil {
				br.gramErr = err
				return
			}
			g.host = h
		}
		if err := g.host.Add(x, M, K); err != nil {
			br.gramErr = fmt.Errorf("cuda blocks: Hessian of %s: %w", name, err)
			return
		}
		g.tokens += int64(M)
		lastX, last = &x[0], g
	}
}

// TakeGrams returns and frees the sums of the wanted layers (device sums downloaded, the
// lower triangle cleared: gptq.Hessian keeps the upper one).
func (br *BlockRunner) TakeGrams(want func(string) bool) ([]model.Gram, error) {
	if err := br.gramErr; err != nil {
		br.gramErr = nil
		return nil, err
	}
	var out []model.Gram
	for key, g := range br.grams {
		if len(wanted(g.names, want)) == 0 {
			continue
		}
		delete(br.grams, key)
		sum := make([]float64, g.k*g.k)
		if g.dev != nil {
			err := g.dev.CopyToHost(cgo.AsBytes(sum), 0)
			g.dev.Close()
			if err != nil {
				return nil, fmt.Errorf("cuda blocks: Hessian of %s: %w", g.names[0], err)
			}
			for i := 1; i < g.k; i++ {
				clear(sum[i*g.k : i*g.k+i])
			}
		}
		if g.host != nil {
			for i, v := range g.host.Sum {
				sum[i] += v
			}
		}
		out = append(out, model.Gram{Names: g.names, K: g.k, Tokens: g.tokens, Sum: sum})
	}
	slices.SortFunc(out, func(a, b model.Gram) int { return strings.Compare(a.Names[0], b.Names[0]) })
	return out, nil
}

// freeGrams releases every sum still held (Close).
func (br *BlockRunner) freeGrams() {
	for _, g := range br.grams {
		g.dev.Close()
	}
	br.grams = nil
}
