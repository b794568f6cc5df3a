package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeQ quantizes w with round-to-nearest min/max parameters using only the scheme
// primitives of package quant (ComputeParams, QuantizeValue), and returns the QTensor in
// the documented storage plus its reference dequantization.
func makeQ(t *testing.T, name string, w []float32, rows, cols int, s quant.Scheme) (*quant.QTensor, []float32) {
	t.Helper()
	gs, groups, err := s.GroupCols(cols)
	require.NoError(t, err)
	nS := rows * groups
	if s.Granularity == quant.PerTensor {
		nS = 1
	}
	q := &quant.QTensor{Name: name, Scheme: s, Rows: rows, Cols: cols, Groups: groups, Scales: make([]float32, nS)}
	if !s.Symmetric {
		q.Zeros = make([]int32, nS)
	}
	idx := func(r, c int) int {
		if s.Granularity == quant.PerTensor {
			return 0
		}
		return r*groups + c/gs
	}
	lo := make([]float32, nS)
	hi := make([]float32, nS)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			k, v := idx(r, c), w[r*cols+c]
			lo[k], hi[k] = min(lo[k], v), max(hi[k], v)
		}
	}
	for k := range lo {
		sc, z := s.ComputeParams(lo[k], hi[k])
		q.Scales[k] = sc
		if q.Zeros != nil {
			q.Zeros[k] = z
		}
	}
	lv := make([]int32, rows*cols)
	deq := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			k := idx(r, c)
			var z int32
			if q.Zeros != nil {
				z = q.Zeros[k]
			}
			lv[r*cols+c] = s.QuantizeValue(w[r*cols+c], q.Scales[k], z)
			deq[r*cols+c] = quant.DequantizeValue(lv[r*cols+c], q.Scales[k], z)
		}
	}
	q.Data, err = storeLevels(s, lv, rows, cols)
	require.NoError(t, err)
	return q, deq
}

var testSchemes = []quant.Scheme{
	{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 16},
	{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 16},
	{Bits: 4, Symmetric: false, Granularity: quant.PerChannel},
	{Bits: 8, Symmetric: true, Granularity: quant.PerChannel},
	{Bits: 8, Symmetric: false, Granularity: quant.PerChannel},
	{Bits: 8, Symmetric: true, Granularity: quant.PerTensor},
	{Bits: 6, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 16},
	{Bits: 6, Symmetric: true, Granularity: quant.PerChannel},
	{Bits: 5, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 8},
	{Bits: 5, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32},
	{Bits: 3, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 16},
	{Bits: 3, Symmetric: true, Granularity: quant.PerChannel},
	{Bits: 7, Symmetric: false, Granularity: quant.PerTensor},
}

// testModel builds a small model with one layer per scheme (odd row counts exercise the
// zero-point padding) plus a W8A8 static and a W8A8 dynamic layer.
func testModel(t *testing.T) (*Model, map[string][]float32) {
	r := testutil.Rand(11)
	m := &Model{Config: map[string]any{"model_type": "llama", "hidden_size": 32.0, "torch_dtype": "float32"}}
	ref := map[string][]float32{}
	for i, s := range testSchemes {
		rows, cols := 13, 32
		w := testutil.Gaussian(r, rows*cols, 0.05)
		w[5] = 0.9 // an outlier
		name := fmt.Sprintf("model.layers.%d.mlp.down_proj", i)
		q, deq := makeQ(t, name+".weight", w, rows, cols, s)
		m.Layers = append(m.Layers, Layer{Name: name, Q: q})
		ref[name] = deq
	}
	for i, act := range []*Activation{{Amax: 3.3}, {Dynamic: true}} {
		w := testutil.Gaussian(r, 8*32, 0.05)
		name := "model.layers.9.self_attn." + []string{"q_proj", "k_proj"}[i]
		q, deq := makeQ(t, name+".weight", w, 8, 32, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel})
		m.Layers = append(m.Layers, Layer{Name: name, Q: q, Act: act})
		ref[name] = deq
	}
	emb := testutil.Gaussian(r, 10*32, 1)
	m.Dense = []safetensors.NamedTensor{
		{Name: "model.embed_tokens.weight", T: tensor.FromF32(emb, 10, 32)},
		{Name: "lm_head.weight", T: tensor.FromF32(append([]float32(nil), emb...), 10, 32)},
	}
	m.Ignore = []string{"lm_head"}
	return m, ref
}

func TestWriteReadRoundTripIsExact(t *testing.T) {
	m, ref := testModel(t)
	tok := filepath.Join(t.TempDir(), "tokenizer.json")
	require.NoError(t, os.WriteFile(tok, []byte(`{"v":1}`), 0o644))
	m.Files = []string{tok}
	m.Extra = map[string][]byte{"calib.cache": []byte("TRT-8601-EntropyCalibration2\n")}
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir, m, Options{}))

	ld, err := Read(dir)
	require.NoError(t, err)
	require.Len(t, ld.Layers, len(m.Layers))
	byName := map[string]Layer{}
	for _, l := range ld.Layers {
		byName[l.Name] = l
	}
	for _, orig := range m.Layers {
		got, ok := byName[orig.Name]
		require.True(t, ok, orig.Name)
		// The QTensor comes back field for field (levels, scales, zero points).
		assert.Equal(t, orig.Q.Scheme, got.Q.Scheme, orig.Name)
		assert.Equal(t, orig.Q.Data, got.Q.Data, orig.Name)
		assert.Equal(t, orig.Q.Scales, got.Q.Scales, orig.Name)
		assert.Equal(t, orig.Q.Zeros, got.Q.Zeros, orig.Name)
		assert.Equal(t, orig.Act, got.Act, orig.Name)
		// compressed-tensors' own dequantization of the stored tensors equals, bit for bit,
		// the reference dequantization of the levels that were exported.
		deq, err := ld.DequantizeStored(orig.Name)
		require.NoError(t, err)
		assert.Equal(t, ref[orig.Name], deq, orig.Name)
		// And package quant's dequantization of the read-back QTensor is the same bits.
		require.NoError(t, got.Q.Validate(), orig.Name)
		assert.Equal(t, quant.Dequantize(orig.Q), quant.Dequantize(got.Q), orig.Name)
		assert.Equal(t, ref[orig.Name], quant.Dequantize(got.Q), orig.Name)
	}
	require.Len(t, ld.Dense, 2)
	assert.Equal(t, m.Dense[0].T.Data, ld.Dense[1].T.Data) // sorted: lm_head, model.embed_tokens
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	require.NoError(t, err)
	assert.Equal(t, `{"v":1}`, string(b))
	b, err = os.ReadFile(filepath.Join(dir, "calib.cache"))
	require.NoError(t, err)
	assert.Equal(t, "TRT-8601-EntropyCalibration2\n", string(b))
}

func TestConfigLayout(t *testing.T) {
	m, _ := testModel(t)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir, m, Options{}))
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	assert.Equal(t, "llama", cfg["model_type"])
	qc := cfg["quantization_config"].(map[string]any)
	assert.Equal(t, "compressed-tensors", qc["quant_method"])
	assert.Equal(t, "mixed-precision", qc["format"]) // pack-quantized and int-quantized groups
	assert.Equal(t, "compressed", qc["quantization_status"])
	assert.Equal(t, []any{"lm_head"}, qc["ignore"])
	groups := qc["config_groups"].(map[string]any)
	// 13 weight-only schemes + the W8A8 static and dynamic groups.
	assert.Len(t, groups, 15)
	// Weight-only groups of 16 (pack-quantized) and int8-activation groups (int-quantized).
	packed := map[string]struct {
		bits      float64
		symmetric bool
	}{
		"model.layers.0.mlp.down_proj": {4, true},  // w4g16
		"model.layers.6.mlp.down_proj": {6, false}, // w6g16a
	}
	int8Acts := map[string]struct {
		strategy string
		dynamic  bool
	}{
		"model.layers.9.self_attn.q_proj": {"tensor", false}, // w8a8s: one static scale
		"model.layers.9.self_attn.k_proj": {"token", true},   // w8a8: per-token scales
	}
	seen := map[string]bool{}
	for _, g := range groups {
		g := g.(map[string]any)
		targets := g["targets"].([]any)
		require.Len(t, targets, 1)
		name := targets[0].(string)
		seen[name] = true
		w := g["weights"].(map[string]any)
		assert.Equal(t, "int", w["type"])
		if want, ok := packed[name]; ok {
			assert.Equal(t, "pack-quantized", g["format"], name)
			assert.Equal(t, want.bits, w["num_bits"], name)
			assert.Equal(t, "group", w["strategy"], name)
			assert.Equal(t, 16.0, w["group_size"], name)
			assert.Equal(t, want.symmetric, w["symmetric"], name)
			assert.Nil(t, g["input_activations"], name)
		}
		if want, ok := int8Acts[name]; ok {
			assert.Equal(t, "int-quantized", g["format"], name)
			a := g["input_activations"].(map[string]any)
			assert.Equal(t, want.strategy, a["strategy"], name)
			assert.Equal(t, want.dynamic, a["dynamic"], name)
		}
	}
	assert.Len(t, seen, 15)

	// Tensor names, dtypes and shapes as compressed-tensors expects them.
	ck := testutil.Open(t, safetensors.OpenCheckpoint, dir)
	info := func(n string) safetensors.TensorInfo {
		i, ok := ck.Info(n)
		require.True(t, ok, n)
		return i
	}
	p := "model.layers.0.mlp.down_proj" // w4g16 sym, 13x32
	assert.Equal(t, tensor.I32, info(p+".weight_packed").DType)
	assert.Equal(t, []int{13, 4}, info(p+".weight_packed").Shape)
	assert.Equal(t, []int{13, 2}, info(p+".weight_scale").Shape)
	assert.Equal(t, []int{2}, info(p+".weight_shape").Shape)
	assert.Equal(t, tensor.I64, info(p+".weight_shape").DType, "compressed-tensors writes weight_shape as int64")
	ws, err := ck.Tensor(p + ".weight_shape")
	require.NoError(t, err)
	assert.Equal(t, []int64{13, 32}, ws.I64())
	_, hasZP := ck.Info(p + ".weight_zero_point")
	assert.False(t, hasZP)
	p = "model.layers.1.mlp.down_proj" // w4g16 asym: zero points packed along rows
	assert.Equal(t, []int{2, 2}, info(p+".weight_zero_point").Shape)
	assert.Equal(t, tensor.I32, info(p+".weight_zero_point").DType)
	p = "model.layers.3.mlp.down_proj" // w8 channel weight-only: 4 per word
	assert.Equal(t, []int{13, 8}, info(p+".weight_packed").Shape)
	assert.Equal(t, []int{13, 1}, info(p+".weight_scale").Shape)
	// The other widths, 13x32: floor(32/b) levels a word along the rows of weight_packed,
	// along the columns of weight_zero_point.
	for _, c := range []struct {
		layer        string
		packed, zero []int
	}{
		{"model.layers.6.mlp.down_proj", []int{13, 7}, []int{3, 2}},  // w6g16a: 5 a word
		{"model.layers.7.mlp.down_proj", []int{13, 7}, nil},          // w6c
		{"model.layers.8.mlp.down_proj", []int{13, 6}, []int{3, 4}},  // w5g8a: 6 a word
		{"model.layers.10.mlp.down_proj", []int{13, 4}, []int{2, 2}}, // w3g16a: 10 a word
		{"model.layers.11.mlp.down_proj", []int{13, 4}, nil},         // w3c
		{"model.layers.12.mlp.down_proj", []int{13, 8}, []int{1}},    // w7ta: 4 a word; one I8 zero point
	} {
		assert.Equal(t, tensor.I32, info(c.layer+".weight_packed").DType, c.layer)
		assert.Equal(t, c.packed, info(c.layer+".weight_packed").Shape, c.layer)
		_, hasZP := ck.Info(c.layer + ".weight_zero_point")
		assert.Equal(t, c.zero != nil, hasZP, c.layer)
		if c.zero != nil {
			assert.Equal(t, c.zero, info(c.layer+".weight_zero_point").Shape, c.layer)
		}
	}
	p = "model.layers.9.self_attn.q_proj"
	assert.Equal(t, tensor.I8, info(p+".weight").DType)
	assert.Equal(t, []int{8, 32}, info(p+".weight").Shape)
	assert.Equal(t, []int{1}, info(p+".input_scale").Shape)
	_, hasIS := ck.Info("model.layers.9.self_attn.k_proj.input_scale")
	assert.False(t, hasIS)
	is, err := ck.Tensor(p + ".input_scale")
	require.NoError(t, err)
	assert.Equal(t, []float32{float32(3.3) / 127}, is.F32(), "input_scale = amax/127")
	assert.Equal(t, tensor.F32, info(p+".weight_scale").DType)
}

func TestInterruptedExportLeavesOldOutput(t *testing.T) {
	m, _ := testModel(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	require.NoError(t, Write(dir, m, Options{}))
	before, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	require.NoError(t, err)

	// The second export fails midway: the weights are written, then copying a file fails.
	m.Layers = m.Layers[:2]
	m.Files = []string{filepath.Join(parent, "missing-tokenizer.json")}
	err = Write(dir, m, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing-tokenizer.json")
	after, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	require.NoError(t, err)
	assert.Equal(t, before, after)
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary directory is left behind")
	assert.Equal(t, "out", entries[0].Name())
}

func TestScaleDTypeMustHoldScalesExactly(t *testing.T) {
	m, _ := testModel(t)
	dir := filepath.Join(t.TempDir(), "out")
	err := Write(dir, m, Options{ScaleDType: tensor.F16})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "weight_scale")
	assert.Contains(t, err.Error(), "F16")
	_, statErr := os.Stat(dir)
	assert.True(t, os.IsNotExist(statErr))

	// After RoundScales (and an input scale that F16 holds) the F16 export round-trips.
	ref := map[string][]float32{}
	for _, l := range m.Layers {
		require.NoError(t, RoundScales(l.Q, tensor.F16))
		lv, err := levels(l.Q)
		require.NoError(t, err)
		ref[l.Name] = dequantRef(l.Q, lv)
	}
	require.NoError(t, Write(dir, m, Options{ScaleDType: tensor.F16}))
	ld, err := Read(dir)
	require.NoError(t, err)
	for _, l := range m.Layers {
		deq, err := ld.DequantizeStored(l.Name)
		require.NoError(t, err)
		assert.Equal(t, ref[l.Name], deq, l.Name)
	}
}

func dequantRef(q *quant.QTensor, lv []int32) []float32 {
	gs, groups, _ := q.Scheme.GroupCols(q.Cols)
	out := make([]float32, len(lv))
	for r := 0; r < q.Rows; r++ {
		for c := 0; c < q.Cols; c++ {
			k := r*groups + c/gs
			if q.Scheme.Granularity == quant.PerTensor {
				k = 0
			}
			var z int32
			if q.Zeros != nil {
				z = q.Zeros[k]
			}
			out[r*q.Cols+c] = quant.DequantizeValue(lv[r*q.Cols+c], q.Scales[k], z)
		}
	}
	return out
}

func TestBadInputErrors(t *testing.T) {
	m, _ := testModel(t)
	m.Layers[0].Q.Scales = m.Layers[0].Q.Scales[:3]
	err := Write(filepath.Join(t.TempDir(), "o"), m, Options{})
	assert.ErrorContains(t, err, "model.layers.0.mlp.down_proj")
	assert.ErrorContains(t, err, "scales")

	m, _ = testModel(t)
	m.Config["quantization_config"] = map[string]any{}
	assert.ErrorContains(t, Write(filepath.Join(t.TempDir(), "o"), m, Options{}), "already has a quantization_config")

	_, err = Read(t.TempDir())
	assert.ErrorContains(t, err, "config.json")
}

// Exports written before weight_shape became I64 stored it as I32: they still read back.
func TestReadAcceptsInt32WeightShape(t *testing.T) {
	m, _ := testModel(t)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir, m, Options{}))
	want, err := Read(dir)
	require.NoError(t, err)

	ck, err := safetensors.OpenCheckpoint(dir)
	require.NoError(t, err)
	var ts []safetensors.NamedTensor
	for _, n := range ck.Names() {
		tt, err := ck.Tensor(n)
		require.NoError(t, err)
		tt = cloneTensor(tt)
		if filepath.Ext(n) == ".weight_shape" {
			v := tt.I64()
			tt = i32Tensor([]int32{int32(v[0]), int32(v[1])}, []int{2})
		}
		ts = append(ts, safetensors.NamedTensor{Name: n, T: tt})
	}
	md := ck.Metadata()
	ck.Close()
	require.NoError(t, safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, md))
	got, err := Read(dir)
	require.NoError(t, err)
	require.Equal(t, len(want.Layers), len(got.Layers))
	for i := range want.Layers {
		assert.Equal(t, want.Layers[i].Q, got.Layers[i].Q, want.Layers[i].Name)
	}
}

// A layer with a group index (GPTQ's act-order groups) is written with weight_g_idx and
// actorder "group" (compressed-tensors' convention) and reads back to the same QTensor;
// compressed-tensors' dequantization of the stored tensors uses the index too.
func TestGIdxRoundTrip(t *testing.T) {
	const rows, cols = 4, 32
	w := testutil.Gaussian(testutil.Rand(21), rows*cols, 1)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}
	q, err := quant.Quantize("model.layers.0.mlp.up_proj.weight", w, rows, cols, s, quant.SearchOptions{})
	require.NoError(t, err)
	q.GIdx = make([]int32, cols)
	for c := range q.GIdx {
		q.GIdx[c] = int32((c * 5 % cols) / 8) // a permutation of the columns, cut in groups of 8
	}
	require.NoError(t, q.Validate())
	plain, _ := makeQ(t, "model.layers.0.mlp.down_proj.weight", w, rows, cols, s)
	m := &Model{Config: map[string]any{"model_type": "llama"}, Layers: []Layer{
		{Name: "model.layers.0.mlp.up_proj", Q: q}, {Name: "model.layers.0.mlp.down_proj", Q: plain}}}
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir, m, Options{}))
	ld, err := Read(dir)
	require.NoError(t, err)
	require.Len(t, ld.Layers, 2)
	got := ld.Layers[1] // sorted: down_proj, up_proj
	require.Equal(t, "model.layers.0.mlp.up_proj", got.Name)
	assert.Equal(t, q.GIdx, got.Q.GIdx)
	assert.Nil(t, ld.Layers[0].Q.GIdx)
	assert.Equal(t, quant.Dequantize(q), quant.Dequantize(got.Q))
	deq, err := ld.DequantizeStored(got.Name)
	require.NoError(t, err)
	assert.Equal(t, quant.Dequantize(q), deq)
	// Two config groups: the same scheme with and without actorder "group".
	require.Len(t, ld.Quant.ConfigGroups, 2)
	var orders []any
	for _, g := range ld.Quant.ConfigGroups {
		orders = append(orders, g.Weights.Actorder)
	}
	assert.ElementsMatch(t, []any{nil, "group"}, orders)

	// W8A8 layers cannot carry it.
	q8, err := quant.Quantize("model.layers.0.mlp.up_proj.weight", w, rows, cols, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 8}, quant.SearchOptions{})
	require.NoError(t, err)
	q8.GIdx = q.GIdx
	err = Write(filepath.Join(t.TempDir(), "w8"), &Model{Config: map[string]any{}, Layers: []Layer{{Name: "model.layers.0.mlp.up_proj", Q: q8, Act: &Activation{Dynamic: true}}}}, Options{})
	assert.ErrorContains(t, err, "g_idx")
}
