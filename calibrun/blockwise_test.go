package calibrun

import (
	"encoding/json"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Driven block by block over stored boundary states, with batches that straddle round
// boundaries, Blockwise gives LayerThresholdsRounds' thresholds, rounds and diagnostics
// exactly; its block parts survive a JSON round trip (what a resumed run reads back).
func TestBlockwiseEqualsLayerThresholdsRounds(t *testing.T) {
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	var ws [][]int
	for i := 0; i < 7; i++ {
		w := []int{1}
		for j := 0; j < 20+3*i; j++ {
			w = append(w, 3+(i*131+j*17)%(m.Config.Vocab-3))
		}
		ws = append(ws, w)
	}
	for _, c := range []struct {
		rounds int
		method calib.Method
	}{{1, calib.MethodEntropy}, {4, calib.MethodEntropy}, {3, calib.MethodPercentile}} {
		opt := calib.DefaultOptions(c.method)
		want, wantTok, wantRep, err := LayerThresholdsRounds(m, ws, opt, 2, c.rounds)
		require.NoError(t, err)
		bw, err := NewBlockwise(m, ws, nil, Options{Batch: 2, Rounds: c.rounds, Calib: opt})
		require.NoError(t, err)
		const batch = 3 // a different batching than the whole-model run's
		var states []*model.Hidden
		for b0 := 0; b0 < len(ws); b0 += batch {
			h, err := m.Embed(ws[b0:min(b0+batch, len(ws))])
			require.NoError(t, err)
			states = append(states, h)
		}
		for b := 0; b < m.Blocks(); b++ {
			bh := bw.Block()
			for i, h := range states {
				require.NoError(t, m.RunBlocks(h, b, b+1, bh.Hook(i*batch, h.Lengths())))
			}
			part, err := bh.Done()
			require.NoError(t, err)
			raw, err := json.Marshal(part)
			require.NoError(t, err)
			var back BlockPart
			require.NoError(t, json.Unmarshal(raw, &back))
			require.NoError(t, bw.Add(&back))
		}
		got, gotTok, gotRep, err := ThresholdsOf(bw.Result())
		require.NoError(t, err)
		assert.Equal(t, want, got, "rounds %d %s", c.rounds, c.method)
		assert.Equal(t, wantTok, gotTok)
		gotRep.Seconds, wantRep.Seconds, gotRep.TokPerSec, wantRep.TokPerSec = 0, 0, 0, 0
		gotRep.Settings.Batch = wantRep.Settings.Batch
		assert.Equal(t, wantRep, gotRep)
	}
}
