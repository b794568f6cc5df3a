package collect

import (
	"fmt"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
)

// Hessians runs m over the calibration sequences, batch sequences per forward pass, and
// returns one Hessian per linear layer (model.LinearNames). Layers that share an input
// (q/k/v, gate/up) get equal but separate Hessians; the shared input is accumulated once.
// progress, if not nil, is called after each batch with the number of sequences done.
func Hessians(m *model.Model, seqs [][]int, batch int, progress func(done int)) (map[string]*gptq.Hessian, error) {
	return hessians(m, seqs, batch, progress, nil)
}

// hessians is Hessians restricted to the layers in want (nil: all).
func hessians(m *model.Model, seqs [][]int, batch int, progress func(done int), want map[string]bool) (map[string]*gptq.Hessian, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("collect: no calibration sequences")
	}
	if batch <= 0 {
		batch = 1
	}
	hs := make(map[string]*gptq.Hessian)
	alias := make(map[string]string) // layer -> layer whose Hessian it shares
	var hookErr error
	for b0 := 0; b0 < len(seqs); b0 += batch {
		b1 := min(b0+batch, len(seqs))
		var lastName string
		var lastX []float32 // copy of the previous hook's input
		hook := func(name string, x []float32, M, K int) {
			if hookErr != nil || len(x) == 0 || want != nil && !want[name] {
				return
			}
			// q/k/v (and gate/up) see the very same input one after another: accumulate it
			// once. (Comparing the values, not the buffer, keeps this right whatever
			// buffers the runner reuses; it costs O(M K) against the O(M K^2) of Add.)
			if len(x) == len(lastX) && equal(x, lastX) {
				if o, ok := alias[name]; ok && o != lastName {
					hookErr = fmt.Errorf("collect: %s shared the input of %s, now of %s", name, o, lastName)
				}
				alias[name] = lastName
				return
			}
			lastName, lastX = name, append(lastX[:0], x...)
			h := hs[name]
			if h == nil {
				var err error
				if h, err = gptq.NewHessian(K); err != nil {
					hookErr = fmt.Errorf("collect: %s: %w", name, err)
					return
				}
				hs[name] = h
			}
			if err := h.Add(x, M, K); err != nil {
				hookErr = fmt.Errorf("collect: %s: %w", name, err)
			}
		}
		if _, err := m.Forward(seqs[b0:b1], hook); err != nil {
			return nil, fmt.Errorf("collect: calibration batch %d: %w", b0/batch, err)
		}
		if hookErr != nil {
			return nil, hookErr
		}
		if progress != nil {
			progress(b1)
		}
	}
	for name, owner := range alias {
		src := hs[owner]
		if src == nil {
			return nil, fmt.Errorf("collect: %s shares the input of %s, which has no statistics", name, owner)
		}
		hs[name] = &gptq.Hessian{K: src.K, Tokens: src.Tokens, Sum: append([]float64(nil), src.Sum...)}
	}
	for _, name := range m.LinearNames() {
		if hs[name] == nil && (want == nil || want[name]) {
			return nil, fmt.Errorf("collect: linear layer %s saw no input during calibration", name)
		}
	}
	return hs, nil
}

func equal(a, b []float32) bool {
	for i, v := range a {
		if v != b[i] {
			return false
		}
	}
	return true
}
