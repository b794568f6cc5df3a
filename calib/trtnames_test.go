package calib

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cache keyed by module names becomes one line per network tensor: q/k/v (and gate/up)
// read one tensor and share its line.
func TestTRTRenameOneLinePerTensor(t *testing.T) {
	p := "model.layers.0."
	c := &TRTCache{Version: "8601", Algorithm: "EntropyCalibration2", Entries: []TRTEntry{
		{p + "mlp.down_proj", 0.25}, {p + "mlp.gate_proj", 2}, {p + "mlp.up_proj", 2},
		{p + "self_attn.k_proj", 1}, {p + "self_attn.o_proj", 0.5}, {p + "self_attn.q_proj", 1}, {p + "self_attn.v_proj", 1},
	}}
	names, err := ParseTRTNames("names.json", []byte(`{
		"model.layers.0.self_attn.q_proj": "/model/layers.0/input_layernorm/Mul_1_output_0",
		"model.layers.0.self_attn.k_proj": "/model/layers.0/input_layernorm/Mul_1_output_0",
		"model.layers.0.self_attn.v_proj": "/model/layers.0/input_layernorm/Mul_1_output_0",
		"model.layers.0.self_attn.o_proj": "/model/layers.0/self_attn/Reshape_7_output_0",
		"model.layers.0.mlp.gate_proj": "/model/layers.0/post_attention_layernorm/Mul_1_output_0",
		"model.layers.0.mlp.up_proj": "/model/layers.0/post_attention_layernorm/Mul_1_output_0",
		"model.layers.0.mlp.down_proj": "/model/layers.0/mlp/Mul_output_0"}`))
	require.NoError(t, err)
	out, unmapped, merged := c.Rename(names)
	assert.Empty(t, unmapped)
	assert.Empty(t, merged)
	b, err := out.Marshal()
	require.NoError(t, err)
	assert.Equal(t, "TRT-8601-EntropyCalibration2\n"+
		"/model/layers.0/mlp/Mul_output_0: 3e800000\n"+
		"/model/layers.0/post_attention_layernorm/Mul_1_output_0: 40000000\n"+
		"/model/layers.0/input_layernorm/Mul_1_output_0: 3f800000\n"+
		"/model/layers.0/self_attn/Reshape_7_output_0: 3f000000\n", string(b))

	// A module the map lacks is left out and listed; members with different scales get
	// the largest, reported.
	c.Entries[3].Scale = 1.5 // k_proj
	delete(names, p+"self_attn.o_proj")
	out, unmapped, merged = c.Rename(names)
	assert.Equal(t, []string{p + "self_attn.o_proj"}, unmapped)
	require.Len(t, merged, 1)
	assert.Equal(t, TRTMerge{Tensor: "/model/layers.0/input_layernorm/Mul_1_output_0",
		Entries: []string{p + "self_attn.k_proj", p + "self_attn.q_proj", p + "self_attn.v_proj"}, Scale: 1.5}, merged[0])
	require.Len(t, out.Entries, 3)
	assert.Equal(t, float32(1.5), out.Entries[2].Scale)
}

func TestParseTRTNamesRefusesBadMaps(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`[1, 2]`, "want a JSON object of strings"},
		{`{"a": 1}`, "want a JSON object of strings"},
		{`{}`, "the map is empty"},
		{`{"a": ""}`, `entry "a": "": names must be non-empty`},
		{`{"a": "x\ny"}`, "names must be non-empty and on one line"},
	} {
		_, err := ParseTRTNames("m.json", []byte(c.in))
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), "trt names m.json: ")
		assert.Contains(t, err.Error(), c.err, c.in)
	}
}
