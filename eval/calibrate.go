package eval

import (
	"errors"
	"fmt"
	"io"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
)

// CalibrateActivations runs the (full-precision) model m over src, adds the input of every
// linear layer to a histogram per layer name, and returns each layer's clipping threshold
// chosen by the calibrator opt (for static int8 activation scales, amax / 127). A
// calibration table written by `autoq calibrate` holds the same quantity.
func CalibrateActivations(m *model.Model, src Source, opt calib.Options, batch int) (map[string]float32, int, error) {
	hists := map[string]*calib.Histogram{}
	for _, name := range m.LinearNames() {
		hists[name] = calib.NewHistogram(name)
	}
	hook := func(name string, x []float32, M, K int) { hists[name].AddF32(x[:M*K]) }
	tokens := 0
	for done := false; !done; {
		var wins [][]int
		for len(wins) < max(batch, 1) {
			w, err := src.Next()
			if errors.Is(err, io.EOF) {
				done = true
				break
			}
			if err != nil {
				return nil, 0, err
			}
			wins = append(wins, w)
			tokens += len(w)
		}
		if len(wins) == 0 {
			break
		}
		if _, err := m.Forward(wins, hook); err != nil {
			return nil, 0, err
		}
	}
	if tokens == 0 {
		return nil, 0, fmt.Errorf("eval: no calibration tokens")
	}
	amax := map[string]float32{}
	for name, h := range hists {
		r, err := calib.Compute(h, opt)
		if err != nil {
			return nil, 0, fmt.Errorf("calibrate %s: %w", name, err)
		}
		if !(r.Amax > 0) {
			return nil, 0, fmt.Errorf("calibrate %s: the layer's input was all zeros (no usable amax)", name)
		}
		amax[name] = r.Amax
	}
	return amax, tokens, nil
}
