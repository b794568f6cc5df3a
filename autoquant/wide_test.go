package autoquant

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wideModel writes a one-layer BF16 Llama with 4096-wide layers (32 heads, 8 KV heads, so
// k/v are 1024 wide and the fused qkv_proj 6144; MLP 5504 = 43 x 128) and a 32-token
// vocabulary: the widths of real models at a size the CPU can quantize in a test.
func wideModel(t *testing.T) string {
	cfg := checkpoint.LlamaConfig{Dim: 4096, HiddenDim: 5504, Layers: 1, Heads: 32, KVHeads: 8, Vocab: 32, MaxSeq: 64,
		RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, Architecture: "LlamaForCausalLM", TorchDType: "bfloat16"}
	r := testutil.Rand(4096)
	mat := func(rows, cols int) *tensor.Tensor {
		v := make([]float32, rows*cols)
		sd := 1 / math.Sqrt(float64(cols))
		for i := range v {
			v[i] = float32(r.NormFloat64() * sd)
		}
		return tensor.FromF32(v, rows, cols).Convert(tensor.BF16)
	}
	ones := func(n int) *tensor.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return tensor.FromF32(v, n).Convert(tensor.BF16)
	}
	D, H, KV := cfg.Dim, cfg.HiddenDim, cfg.KVDim()
	ts := []safetensors.NamedTensor{{Name: "model.embed_tokens.weight", T: mat(cfg.Vocab, D)}, {Name: "model.norm.weight", T: ones(D)}}
	p := "model.layers.0."
	ts = append(ts, safetensors.NamedTensor{Name: p + "input_layernorm.weight", T: ones(D)},
		safetensors.NamedTensor{Name: p + "post_attention_layernorm.weight", T: ones(D)})
	for i, sh := range [7][2]int{{D, D}, {KV, D}, {KV, D}, {D, D}, {H, D}, {H, D}, {D, H}} {
		ts = append(ts, safetensors.NamedTensor{Name: fmt.Sprintf("model.layers.0.%s.weight", linearSuffix(i)), T: mat(sh[0], sh[1])})
	}
	dir := filepath.Join(t.TempDir(), "wide")
	require.NoError(t, checkpoint.WriteHF(dir, &cfg, ts))
	return dir
}

func linearSuffix(i int) string {
	return [7]string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}[i]
}

// wideSensitivity is a sensitivity table for the layers (no forward pass at this width
// on the CPU): the run's default candidates for wide models, damage falling with bits.
func wideSensitivity(layers []plan.Layer) *plan.Sensitivity {
	s := &plan.Sensitivity{DType: "BF16", Schemes: []string{"w4g128", "w4g128a", "w4g64a", "w8"}}
	weight := []float64{1, 0.6, 0.7, 0.8, 1.3, 1.1, 2.2}
	for i, l := range layers {
		d := weight[i%7] * 1e-3
		s.Layers = append(s.Layers, plan.LayerSensitivity{Name: l.Name, Rows: l.Rows, Cols: l.Cols, Damage: map[string]plan.Damage{
			"w4g128": {KL: d}, "w4g128a": {KL: 0.8 * d}, "w4g64a": {KL: 0.6 * d}, "w8": {KL: 0.02 * d}}})
	}
	return s
}

// At 4096-wide layers the vLLM plans at 5.3 and 6 bits keep every fused group on one
// scheme and every layer within vLLM's rules, and their exports (a BF16 model: BF16
// scales) read back to the evaluated weights (the 5.3-bit one is exported here).
func TestVLLMPlansAndExportsAt4096Wide(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: quantizes 110M weights")
	}
	dir := wideModel(t)
	src, err := OpenSource(dir, "")
	require.NoError(t, err)
	require.Equal(t, tensor.BF16, src.DType())
	layers := sourceLayers(src)
	s := wideSensitivity(layers)
	for _, bits := range []float64{5.3, 6} {
		et, err := openTarget("vllm", ServeDType(src.DType()), layers)
		require.NoError(t, err)
		p, res, err := solveFor(et, s, plan.Options{TargetBits: bits})
		require.NoError(t, err)
		assert.LessOrEqual(t, res.AvgBits, bits+1e-9)
		assert.Equal(t, "vllm", p.Target)
		byName := map[string]string{}
		for i, l := range res.Layers {
			byName[l.Name] = res.Choices[i].String()
		}
		q := "model.layers.0.self_attn."
		assert.Equal(t, byName[q+"q_proj"], byName[q+"k_proj"], "%.1f bits: q/k/v share one scheme", bits)
		assert.Equal(t, byName[q+"q_proj"], byName[q+"v_proj"])
		assert.Equal(t, byName["model.layers.0.mlp.gate_proj"], byName["model.layers.0.mlp.up_proj"])
		problems, err := et.t.CheckPlan(et.layers, res.Choices, tensor.BF16)
		require.NoError(t, err)
		assert.Empty(t, problems)
		t.Logf("%.1f bits: %.3f bits/weight, %v", bits, res.AvgBits, byName)
		if bits != 5.3 {
			continue // one export is enough to show the round trip (each quantizes 110M weights twice)
		}
		file := filepath.Join(t.TempDir(), "plan.json")
		require.NoError(t, plan.Write(file, p))
		f := ExportOptions{Input: Input{Model: dir, SeqLen: 64, CalibMethod: "max", Int4: "rtn", Batch: 1},
			Plan: file, Out: filepath.Join(t.TempDir(), "out")}
		rep, err := Export(Env{}, f)
		require.NoError(t, err)
		assert.Equal(t, "BF16", rep.ScaleDType)
		checkReadBack(t, f.Out, f, tensor.BF16)
	}
}
