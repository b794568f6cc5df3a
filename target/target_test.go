package target

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func recipe(t *testing.T, s string) quant.Recipe {
	t.Helper()
	r, err := quant.ParseRecipe(s)
	require.NoError(t, err)
	return r
}

// llama lists the linear layers of n decoder layers of a Llama with grouped-query
// attention: dim, kv (the k/v output width) and hidden (the MLP width).
func llama(n, dim, kv, hidden int) []Layer {
	var out []Layer
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		out = append(out,
			Layer{p + "self_attn.q_proj", dim, dim}, Layer{p + "self_attn.k_proj", kv, dim}, Layer{p + "self_attn.v_proj", kv, dim},
			Layer{p + "self_attn.o_proj", dim, dim},
			Layer{p + "mlp.gate_proj", hidden, dim}, Layer{p + "mlp.up_proj", hidden, dim}, Layer{p + "mlp.down_proj", dim, hidden})
	}
	return out
}

func get(t *testing.T, name string) *Target {
	t.Helper()
	tg, err := Get(name)
	require.NoError(t, err)
	return tg
}

func TestUnitsFuseQKVAndGateUp(t *testing.T) {
	layers := llama(2, 64, 32, 172)
	units, err := get(t, "vllm").Units(layers)
	require.NoError(t, err)
	require.Len(t, units, 8)
	want := []struct {
		name    string
		members []int
		out, in int
	}{
		{"model.layers.0.self_attn.qkv_proj", []int{0, 1, 2}, 64 + 32 + 32, 64},
		{"model.layers.0.self_attn.o_proj", []int{3}, 64, 64},
		{"model.layers.0.mlp.gate_up_proj", []int{4, 5}, 2 * 172, 64},
		{"model.layers.0.mlp.down_proj", []int{6}, 64, 172},
		{"model.layers.1.self_attn.qkv_proj", []int{7, 8, 9}, 128, 64},
	}
	for i, w := range want {
		assert.Equal(t, w.name, units[i].Name)
		assert.Equal(t, w.members, units[i].Members)
		assert.Equal(t, w.out, units[i].Out, w.name)
		assert.Equal(t, w.in, units[i].In, w.name)
	}
	assert.Equal(t, "model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj)", units[0].Describe(layers))

	// transformers runs the layers as they are: no groups.
	units, err = get(t, "transformers").Units(layers)
	require.NoError(t, err)
	assert.Len(t, units, len(layers))

	// A fused group needs one input width.
	bad := llama(1, 64, 32, 172)
	bad[1].Cols = 32
	_, err = get(t, "vllm").Units(bad)
	require.ErrorContains(t, err, "model.layers.0.self_attn.qkv_proj needs one input width")
}

func TestUnknownTarget(t *testing.T) {
	_, err := Get("onnx")
	require.EqualError(t, err, `unknown target "onnx" (want vllm, transformers, tensorrt, gguf, any)`)
}

// Each case is a unit shape, a scheme, the serving dtype and, per target, "" (loads) or
// a fragment of the refusal. Expectations are worked out by hand from the rules read in
// vLLM (Marlin: out%64, in%128, groups {-1,32,64,128}, zero points only for 4-bit;
// Exllama: F16 only, symmetric, in%32, groups multiple of 32; CUTLASS int8: symmetric
// per-tensor/per-channel weights, out%16 and in%16).
func TestCheckRules(t *testing.T) {
	cases := []struct {
		name     string
		out, in  int
		scheme   string
		dtype    tensor.DType
		vllm, tr string
		trt      string
	}{
		{"4096 int4 g128", 6144, 4096, "w4g128", tensor.BF16, "", "", "no tensorrt kernel takes weight-only"},
		{"4096 int4 g128 zero points", 6144, 4096, "w4g128a", tensor.BF16, "", "", "no tensorrt kernel"},
		{"4096 int8 channel", 22016, 4096, "w8", tensor.BF16, "", "", "no tensorrt kernel"},
		{"int8 with zero points", 4096, 4096, "w8a", tensor.F16,
			"Marlin: 8-bit weights with zero points are not taken (widths {4}) [", "", "no tensorrt kernel"},
		{"group 16", 4096, 4096, "w4g16", tensor.F16, "Marlin: group size 16 is not taken", "", "no tensorrt kernel"},
		{"group 16 exllama", 4096, 4096, "w4g16", tensor.F16, "Exllama: group size 16 is not a multiple of 32", "", "no tensorrt"},
		{"per-tensor weight-only", 4096, 4096, "w8t", tensor.F16,
			"Marlin: per-tensor weights are not taken (only per-channel, per-group)", "", "no tensorrt"},
		{"narrow, F16: Exllama", 128, 64, "w4g32", tensor.F16, "", "", "no tensorrt"},
		{"narrow, BF16: nothing", 128, 64, "w4g32", tensor.BF16,
			"Marlin: input features 64 are not a multiple of 128 [", "", "no tensorrt"},
		{"narrow, BF16: exllama", 128, 64, "w4g32", tensor.BF16,
			"Exllama: runs only with F16 activations (the model is served in BF16)", "", "no tensorrt"},
		{"stories260K down_proj", 64, 172, "w8", tensor.F16, "Exllama: row length 172 is not a multiple of 32", "", "no tensorrt"},
		{"output not packable", 100, 256, "w4g32", tensor.F16, "Exllama: output features 100 are not a multiple of the packing factor 8", "", "no tensorrt"},
		{"W8A8 static", 4096, 4096, "w8a8s", tensor.BF16, "", "", ""},
		{"W8A8 per-tensor weights", 4096, 4096, "w8ta8s", tensor.BF16, "", "", "TensorRT INT8: per-tensor weights are not taken"},
		{"W8A8 dynamic", 4096, 4096, "w8a8", tensor.BF16, "", "", "no tensorrt kernel takes layers with per-token int8 activations"},
		{"W8A8 asymmetric weights", 4096, 4096, "w8aa8s", tensor.BF16,
			"CUTLASS int8: 8-bit weights with zero points are not taken (widths none)", "", "TensorRT INT8: 8-bit weights with zero points"},
		{"W8A8 group weights", 4096, 4096, "w8g128a8", tensor.BF16, "CUTLASS int8: per-group weights are not taken", "", "no tensorrt"},
		{"W8A8 unaligned", 100, 4096, "w8a8", tensor.BF16, "CUTLASS int8: output features 100 are not a multiple of 16", "", "no tensorrt"},
		{"full precision", 100, 172, "w16", tensor.BF16, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			layers := []Layer{{"l", c.out, c.in}}
			u := Unit{Name: "l", Members: []int{0}, Out: c.out, In: c.in}
			for _, tc := range []struct{ target, want string }{{"vllm", c.vllm}, {"transformers", c.tr}, {"any", c.tr}, {"tensorrt", c.trt}} {
				err := get(t, tc.target).Check(layers, u, recipe(t, c.scheme), c.dtype)
				if tc.want == "" {
					assert.NoError(t, err, tc.target)
					continue
				}
				require.Error(t, err, tc.target)
				assert.Contains(t, err.Error(), tc.want, tc.target)
				var r *Refusal
				require.ErrorAs(t, err, &r)
				assert.Equal(t, "l", r.Layer)
			}
		})
	}
}

// The refusal names the layer, the scheme (fitted to the layer) and every kernel's rule
// with its source.
func TestRefusalMessage(t *testing.T) {
	layers := llama(1, 64, 32, 172)
	units, err := get(t, "vllm").Units(layers)
	require.NoError(t, err)
	err = get(t, "vllm").Check(layers, units[3], recipe(t, "w4g32"), tensor.F16) // down_proj: g32 fits 172 as g43
	require.Error(t, err)
	assert.Equal(t, "vllm cannot load model.layers.0.mlp.down_proj as w4g43: "+
		"Marlin: group size 43 is not taken (sizes {-1, 32, 64, 128}; -1 = per channel) [vllm marlin.py, marlin_utils.py]; "+
		"Exllama: group size 43 is not a multiple of 32 [vllm exllama.py, q_gemm.cu]", err.Error())
}

// New bit widths are table data: a 5-bit layer is refused by vLLM (WNA16 maps 4 and 8
// only) and loaded by transformers (compressed-tensors packs 1 to 8 bits).
func TestOtherBitWidthsAreData(t *testing.T) {
	w5 := quant.Recipe{Weight: quant.Scheme{Bits: 5, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 128}}
	layers := []Layer{{"l", 4096, 4096}}
	u := Unit{Name: "l", Members: []int{0}, Out: 4096, In: 4096}
	err := get(t, "vllm").Check(layers, u, w5, tensor.BF16)
	require.ErrorContains(t, err, "Marlin: 5-bit symmetric weights are not taken (widths {4, 8})")
	assert.NoError(t, get(t, "transformers").Check(layers, u, w5, tensor.BF16))
}

func TestCheckPlanFusedGroups(t *testing.T) {
	layers := llama(1, 4096, 1024, 11008)
	vllm := get(t, "vllm")
	choose := func(s ...string) []quant.Recipe {
		var out []quant.Recipe
		for _, x := range s {
			out = append(out, recipe(t, x))
		}
		return out
	}
	// The plan of the issue: q w4g32, k w8, v w4g16a: vLLM would build qkv_proj with
	// q_proj's scheme and fail on the shapes of k and v.
	errs, err := vllm.CheckPlan(layers, choose("w4g32", "w8", "w4g16a", "w4g128", "w4g128", "w4g128", "w4g128"), tensor.BF16)
	require.NoError(t, err)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "vllm loads model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj) as one layer, "+
		"so its members must share one scheme, but the plan gives model.layers.0.self_attn.q_proj w4g32, "+
		"model.layers.0.self_attn.k_proj w8c, model.layers.0.self_attn.v_proj w4g16a [")

	// Full precision beside quantized shards ("requires all to use the same scheme").
	errs, err = vllm.CheckPlan(layers, choose("w16", "w8", "w8", "w16", "w8", "w16", "w16"), tensor.BF16)
	require.NoError(t, err)
	require.Len(t, errs, 2)
	assert.Contains(t, errs[0].Error(), "qkv_proj (q_proj, k_proj, v_proj) as one layer")
	assert.Contains(t, errs[1].Error(), "gate_up_proj (gate_proj, up_proj) as one layer")

	// Consistent groups of loadable schemes: nothing to say; transformers takes the mixed plan.
	errs, err = vllm.CheckPlan(layers, choose("w8", "w8", "w8", "w16", "w4g128a", "w4g128a", "w4g64a"), tensor.BF16)
	require.NoError(t, err)
	assert.Empty(t, errs)
	errs, err = get(t, "transformers").CheckPlan(layers, choose("w4g32", "w8", "w4g16a", "w8t", "w16", "w8", "w4g16"), tensor.BF16)
	require.NoError(t, err)
	assert.Empty(t, errs)

	// A consistent group whose shared scheme the fused shape refuses.
	errs, err = vllm.CheckPlan(layers, choose("w8a", "w8a", "w8a", "w16", "w16", "w16", "w16"), tensor.BF16)
	require.NoError(t, err)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "vllm cannot load model.layers.0.self_attn.qkv_proj (q_proj, k_proj, v_proj) as w8ca")
}

// Qwen2 (q/k/v with biases) fuses the same way: the bias changes no name.
func TestAnyWarnsAsVLLM(t *testing.T) {
	anyT := get(t, "any")
	assert.Equal(t, "vllm", anyT.WarnAs)
	assert.Empty(t, anyT.Fused)
}

// docs/EXPORT.md cites the file of every rule in the tables.
func TestDocsCiteEverySource(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "EXPORT.md"))
	require.NoError(t, err)
	file := regexp.MustCompile(`[A-Za-z_0-9]+\.(py|cu)`)
	for _, tg := range all {
		var refs []string
		for _, k := range tg.Kernels {
			refs = append(refs, k.Source, k.Ref)
		}
		for _, f := range tg.Fused {
			refs = append(refs, f.Source, f.Ref)
		}
		for _, r := range refs {
			for _, f := range file.FindAllString(r, -1) {
				assert.Contains(t, string(doc), f, "%s: %s", tg.Name, r)
			}
		}
		assert.Contains(t, string(doc), "`"+tg.Name+"`")
	}
}

// The gguf target takes llama.cpp's block formats and nothing else below full precision:
// blocks of 32 need in % 32, the k-quants in % 256 (stories260K's 172-wide down_proj takes
// none, its 64-wide layers no k-quant).
func TestGGUFTakesBlockFormatsOnly(t *testing.T) {
	g := get(t, "gguf")
	layers := []Layer{{"a", 64, 64}, {"down", 64, 172}, {"wide", 512, 256}}
	units, err := g.Units(layers)
	require.NoError(t, err)
	require.Len(t, units, 3, "no fused groups")
	check := func(u int, scheme string) error { return g.Check(layers, units[u], recipe(t, scheme), tensor.F32) }
	for _, s := range []string{"q8_0", "q4_0", "q4_1", "q5_0", "q5_1+gptq", "q4_0+ref", "w16"} {
		assert.NoError(t, check(0, s), s)
		assert.NoError(t, check(2, s), s)
	}
	for _, s := range []string{"q4_k", "q6_k+gptq"} {
		assert.NoError(t, check(2, s), s)
		assert.ErrorContains(t, check(0, s), "input features 64 are not a multiple of 256", s)
	}
	assert.ErrorContains(t, check(1, "q8_0"), "input features 172 are not a multiple of 32")
	err = check(0, "w4g32")
	assert.ErrorContains(t, err, "only the block formats q8_0, q4_0, q4_1, q5_0, q5_1 are stored")
	assert.ErrorContains(t, err, "only the block formats q4_k, q6_k are stored")
	assert.ErrorContains(t, check(0, "w8a8"), "no gguf kernel takes layers with per-token int8 activations")

	// And the compressed-tensors targets refuse block formats.
	for _, name := range []string{"vllm", "transformers"} {
		tg := get(t, name)
		us, err := tg.Units(layers)
		require.NoError(t, err)
		err = tg.Check(layers, us[len(us)-1], recipe(t, "q4_0"), tensor.F16)
		assert.ErrorContains(t, err, "q4_0 is a llama.cpp block format (the gguf target)", name)
	}
}
