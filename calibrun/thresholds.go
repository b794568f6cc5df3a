package calibrun

import (
	"fmt"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
)

// LayerThresholds calibrates m on windows already in memory (one round, the CPU reference
// engine) and returns every linear layer's clipping threshold under opt (static int8
// activation scale = amax / 127) and the tokens seen. It is the calibration the jobs run
// before sensitivity and export; `autoq calibrate --model` is the same run with rounds,
// shards, workers and diagnostics.
func LayerThresholds(m *model.Model, ws [][]int, opt calib.Options, batch int) (map[string]float32, int, error) {
	amax, tokens, _, err := LayerThresholdsRounds(m, ws, opt, batch, 1)
	return amax, tokens, err
}

// LayerThresholdsRounds is LayerThresholds over rounds consecutive slices of the windows,
// with the run's diagnostics (convergence, coverage) when rounds > 1.
func LayerThresholdsRounds(m *model.Model, ws [][]int, opt calib.Options, batch, rounds int) (map[string]float32, int, *Report, error) {
	seq := 2
	for _, w := range ws {
		seq = max(seq, len(w))
	}
	res, err := RunStream(m, Windows(ws), nil, Options{SeqLen: seq, Batch: max(batch, 1), Rounds: max(rounds, 1), Shards: 1, Calib: opt})
	if err != nil {
		return nil, 0, nil, err
	}
	return ThresholdsOf(res)
}

// ThresholdsOf is every linear layer's threshold after the last round of a run (each member
// of an input group gets its group's), the tokens seen and the run's diagnostics. A group
// whose input was all zeros is an error naming its first layer.
func ThresholdsOf(res *Result) (map[string]float32, int, *Report, error) {
	if res.Windows == 0 {
		return nil, 0, nil, fmt.Errorf("calibrun: no calibration tokens")
	}
	last := res.Rounds[len(res.Rounds)-1]
	amax := map[string]float32{}
	for gi, g := range res.Groups {
		a := last.Results[gi].Amax
		if !(a > 0) {
			return nil, 0, nil, fmt.Errorf("calibrate %s: the layer's input was all zeros (no usable amax)", g.Members[0])
		}
		for _, n := range g.Members {
			amax[n] = a
		}
	}
	return amax, last.Tokens, Diagnose(res), nil
}
