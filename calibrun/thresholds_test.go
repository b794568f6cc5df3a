package calibrun

import (
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// LayerThresholds with the max calibrator returns, for every linear layer, the largest
// |x| its input held (within a histogram bin), found here by hand with a forward hook;
// q/k/v (one shared input) get the same threshold.
func TestLayerThresholdsMaxByHand(t *testing.T) {
	m, tok := realdata.Model(t)
	ws := realdata.Windows(t, m, tok, "calib", 256, 2048)
	amax, n, err := LayerThresholds(m, ws, calib.DefaultOptions(calib.MethodMax), 4)
	require.NoError(t, err)
	assert.Equal(t, 2048, n)
	require.Len(t, amax, len(m.LinearNames()))
	want := map[string]float32{}
	for _, win := range ws {
		_, err := m.Forward([][]int{win}, func(name string, x []float32, M, K int) {
			for _, v := range x[:M*K] {
				want[name] = max(want[name], v, -v)
			}
		})
		require.NoError(t, err)
	}
	for name, a := range want {
		assert.InDelta(t, a, amax[name], float64(a)*0.01, "%s: max calibration within a histogram bin", name)
	}
	assert.Equal(t, amax["model.layers.1.self_attn.q_proj"], amax["model.layers.1.self_attn.v_proj"], "one shared input")

	_, _, err = LayerThresholds(m, nil, calib.DefaultOptions(calib.MethodMax), 4)
	assert.ErrorContains(t, err, "no calibration tokens")
}
