package model

import (
	"fmt"

	"github.com/autoq/autoq/tensor"
)

// A lazy model with LazyOptions.HeadOnUse checks its lm_head when built but reads it only
// when the head first runs (Head, HeadRows, or Weight/FixedTensor of lm_head.weight), and
// ReleaseHead drops it again: a pass that runs no head (calibration, quantization) does
// not hold the classifier, a third of a small model's memory. A tied model's classifier is
// its embedding and is always held.

const headName = "lm_head.weight"

// checkHeadOnUse checks the lm_head in the source (shape, dtype, finite values) without
// keeping it; the classifier stays nil until ensureHead.
func (m *Model) checkHeadOnUse() error {
	V, D := m.Config.Vocab, m.Config.Dim
	t, err := m.lazy.src.Tensor(headName)
	if err != nil || t == nil {
		return fmt.Errorf("model: missing tensor %s (%v)", headName, err)
	}
	if t.DType == tensor.BF16 || t.DType == tensor.F16 {
		err = checkHalf(headName, t, []int{V, D})
	} else if err = checkTensor(headName, t, []int{V, D}); err == nil {
		v := t.ToF32()
		if i := firstNonFinite(v); i >= 0 {
			err = fmt.Errorf("model: tensor %s has a non-finite value %g at element %d", headName, v[i], i)
		}
	}
	if err == nil && m.lazy.opt.Release != nil {
		m.lazy.opt.Release([]string{headName})
	}
	m.lazy.headOnUse = err == nil
	return err
}

// ensureHead reads the lm_head of a HeadOnUse model if it is not held.
func (m *Model) ensureHead() error {
	if m.lazy == nil || !m.lazy.headOnUse {
		return nil
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	if m.classifier != nil {
		return nil
	}
	cls, err := m.lazyGetFixed(headName, m.Config.Vocab, m.Config.Dim)
	if err != nil {
		return err
	}
	_, m.classifier = fixedMatrix(cls, m.Config.Vocab, m.Config.Dim)
	return nil
}

// ReleaseHead drops the lm_head of a lazy model built with HeadOnUse (it is read again when
// next used); a no-op for any other model.
func (m *Model) ReleaseHead() {
	if m.lazy == nil || !m.lazy.headOnUse {
		return
	}
	m.lazy.mu.Lock()
	defer m.lazy.mu.Unlock()
	m.classifier = nil
	delete(m.weights, headName)
}
