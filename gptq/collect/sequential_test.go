package collect

import (
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInputGroups(t *testing.T) {
	names := []string{"l.0.q_proj", "l.0.k_proj", "l.0.v_proj", "l.0.o_proj", "l.0.gate_proj", "l.0.up_proj", "l.0.down_proj", "l.1.q_proj"}
	assert.Equal(t, [][]string{{"l.0.q_proj", "l.0.k_proj", "l.0.v_proj"}, {"l.0.o_proj"}, {"l.0.gate_proj", "l.0.up_proj"}, {"l.0.down_proj"}, {"l.1.q_proj"}}, inputGroups(names))
}

// Sequential mode: the first input group sees full-precision inputs, so its layers must
// equal one-shot GPTQ; later layers see quantized inputs, so some must differ; RTN without
// a Hessian-based search does not depend on the inputs at all.
func TestSequential(t *testing.T) {
	m, calib, _ := realData(t, 2, 256)
	s := quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 32}
	hs, err := Hessians(m, calib, 2, nil)
	require.NoError(t, err)
	oneShot, _, err := QuantizeModel(m, hs, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	seq, reps, err := Sequential(m, calib, 2, GPTQ, gptq.ClipNone, s, gptq.Options{}, nil)
	require.NoError(t, err)
	defer m.ResetLinears()
	require.Len(t, reps, len(m.LinearNames()))
	for _, n := range []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"} {
		assert.Equal(t, oneShot[n], seq[n], n)
	}
	assert.NotEqual(t, oneShot["model.layers.4.mlp.down_proj"].Data, seq["model.layers.4.mlp.down_proj"].Data)
	_, plugged := m.Linear("model.layers.4.mlp.down_proj").(*model.FakeQuant)
	assert.True(t, plugged, "Sequential leaves the quantized layers plugged in")

	m.ResetLinears()
	rtnSeq, _, err := Sequential(m, calib, 2, RTN, gptq.ClipNone, s, gptq.Options{}, nil)
	require.NoError(t, err)
	rtn, _, err := QuantizeModel(m, nil, RTN, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	assert.Equal(t, rtn, rtnSeq)
}
