package autoquant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gguf/llamacpp"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needLlamaCpp skips unless llama.cpp (scripts/llamacpp/install.sh) and node are there.
func needLlamaCpp(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the llama.cpp check (it starts node)")
	}
	t.Setenv("AUTOQ_ROOT", testutil.RepoRoot(t))
	if _, err := llamacpp.Locate(); errors.Is(err, llamacpp.ErrNotInstalled) {
		t.Skipf("skipping the llama.cpp check: %v", err)
	} else {
		require.NoError(t, err)
	}
}

// exportStories writes stories260K as GGUF by a plan of rules (down_proj is always w16:
// 172 inputs take no block format).
func exportStories(t *testing.T, dir, name, full string, withData bool, rules ...string) string {
	t.Helper()
	out := filepath.Join(dir, name+".gguf")
	f := ExportOptions{Input: Input{Model: testutil.SharedData(t, "stories260K.bin"), SeqLen: 128, CalibTokens: 8192, CalibMethod: "entropy", Int4: "gptq", Batch: 8, Device: "cpu"},
		Plan: planOf(t, append([]string{"*.down_proj=w16"}, rules...)...), Format: "gguf", FullType: full, Out: out}
	if withData {
		f.Data = testutil.SharedData(t, "tinystories_val.txt")
	}
	_, err := Export(Env{}, f)
	require.NoError(t, err)
	return out
}

// evalGGUF has autoq and llama.cpp evaluate the files on the same held-out windows.
func evalGGUF(t *testing.T, files ...string) []EvalRow {
	t.Helper()
	rep, err := Eval(Env{}, EvalOptions{Model: testutil.SharedData(t, "stories260K.bin"), Data: testutil.SharedData(t, "tinystories_val.txt"),
		Tokens: 4096, SeqLen: 128, Batch: 8, Split: "eval", Search: "max", ActCalib: "entropy", GGUF: files, LlamaCpp: "on", Device: "cpu"})
	require.NoError(t, err)
	require.NotEmpty(t, rep.LlamaCpp)
	return rep.Results[1:]
}

// Every legacy type loads in llama.cpp, and its perplexity agrees with autoq's evaluation
// of the same weights: within 0.5% for F32 and Q8_0 (the other types are reported: llama.cpp
// rounds each quantized matmul's input to Q8_0/Q8_1 blocks, autoq does not).
func TestGGUFTypesAgreeWithLlamaCpp(t *testing.T) {
	needLlamaCpp(t)
	dir := t.TempDir()
	files := []string{exportStories(t, dir, "F32", "f32", false, "*=w16")}
	for _, typ := range []string{"q8_0", "q4_0", "q4_1", "q5_0", "q5_1"} {
		files = append(files, exportStories(t, dir, typ, "f32", false, "*="+typ))
	}
	for i, r := range evalGGUF(t, files...) {
		t.Logf("%-10s autoq ppl %.4f, llama.cpp %.4f (%+.4f%%), %.3f bits/weight (linear)", r.Scheme, r.Perplexity, r.LlamaCppPPL, 100*r.LlamaCppRel, r.GGUF.Linear)
		if i < 2 {
			assert.Less(t, abs(r.LlamaCppRel), 0.005, r.Scheme)
		}
		assert.Less(t, abs(r.LlamaCppRel), 0.02, "%s: llama.cpp's input rounding moves perplexity by well under 2%%", r.Scheme)
	}
}

// autoq's GPTQ Q4_0 (levels chosen with the layers' Hessians on the calibration half) has a
// lower held-out perplexity in llama.cpp than llama.cpp's own Q4_0 quantizer.
func TestGGUFGPTQBeatsLlamaCppQuantizer(t *testing.T) {
	needLlamaCpp(t)
	dir := t.TempDir()
	ours := exportStories(t, dir, "q4_0-gptq", "auto", true, "*=q4_0+gptq")
	ref := exportStories(t, dir, "q4_0-ref", "auto", false, "*=q4_0+ref")
	rows := evalGGUF(t, ours, ref)
	t.Logf("llama.cpp held-out perplexity: autoq GPTQ q4_0 %.4f, llama.cpp q4_0 %.4f", rows[0].LlamaCppPPL, rows[1].LlamaCppPPL)
	assert.Less(t, rows[0].LlamaCppPPL, rows[1].LlamaCppPPL)
	assert.Equal(t, fmt.Sprint(rows[0].GGUF.Types), fmt.Sprint(rows[1].GGUF.Types), "same types, same bits")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// The k-quants need rows of 256, which stories260K does not have: on a random Llama of
// width 256 (tok512's vocabulary, text windows of tinystories_val.txt), autoq's Q4_K and
// Q6_K (grid weighted by diag H, then GPTQ onto it, Hessians from the calibration half)
// stay closer to the F32 model in llama.cpp than llama.cpp's own quantizer of the same type:
// mean |Δ log p| against llama.cpp's scores of the F32 file, over held-out windows.
func TestGGUFKQuantCloserThanLlamaCppQuantizer(t *testing.T) {
	needLlamaCpp(t)
	in, err := llamacpp.Locate()
	require.NoError(t, err)
	cfg := checkpoint.LlamaConfig{Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, MaxSeq: 128,
		RopeTheta: 10000, NormEps: 1e-5, Architecture: "LlamaForCausalLM"}
	ts := llamatest.Tensors(cfg, 21, llamatest.RandomNorms)
	src := &Source{Cfg: cfg}
	for n, x := range ts {
		if n != "model.embed_tokens.weight" && len(x.Shape) == 2 { // moderate logits
			v := x.F32()
			for i := range v {
				v[i] *= 0.2
			}
		}
		src.Tensors = append(src.Tensors, safetensors.NamedTensor{Name: n, T: x})
	}
	sort.Slice(src.Tensors, func(a, b int) bool { return src.Tensors[a].Name < src.Tensors[b].Name })
	tok, err := tokenizer.LoadLlama2C(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	src.Tok = tok
	d, err := LoadData(testutil.SharedData(t, "tinystories_val.txt"), tok, cfg.Vocab, DataOptions{SeqLen: 64, CalibTokens: 4096, EvalTokens: 2048})
	require.NoError(t, err)
	m, err := src.NewModel()
	require.NoError(t, err)
	hs, err := collect.Hessians(m, d.Calib, 8, nil)
	require.NoError(t, err)
	qz := &Quantizers{LowBit: GPTQ(hs, BestGPTQ), Hessians: hs}
	dir := t.TempDir()
	write := func(name string, rules ...string) string {
		p := &plan.Plan{Version: 1, ScaleBits: 16}
		for _, r := range rules {
			rule, err := plan.ParseOverride(r)
			require.NoError(t, err)
			p.Rules = append(p.Rules, rule)
		}
		qm, err := src.NewModel()
		require.NoError(t, err)
		ql, err := ApplyPlan(qm, p, qz, nil)
		require.NoError(t, err)
		out := filepath.Join(dir, name+".gguf")
		require.NoError(t, writeGGUF(out, src, ql, gguf.F32))
		return out
	}
	score := func(path string) [][]float64 {
		lp, err := in.LogProbs(context.Background(), path, d.Eval, 1)
		require.NoError(t, err)
		return lp
	}
	full := score(write("f32", "*=w16"))
	dist := func(lp [][]float64) (mad, nll float64) {
		n := 0
		for w := range lp {
			for p := range lp[w] {
				mad += math.Abs(lp[w][p] - full[w][p])
				nll -= lp[w][p]
				n++
			}
		}
		return mad / float64(n), nll / float64(n)
	}
	_, fullNLL := dist(full)
	for _, typ := range []string{"q4_k", "q6_k"} {
		ours, oursNLL := dist(score(write(typ, "*="+typ)))
		ref, refNLL := dist(score(write(typ+"-ref", "*="+typ+"+ref")))
		t.Logf("%s vs F32 in llama.cpp: mean |Δ log p| autoq %.5f, llama.cpp's quantizer %.5f; NLL F32 %.5f, autoq %.5f, llama.cpp %.5f",
			typ, ours, ref, fullNLL, oursNLL, refNLL)
		assert.Less(t, ours, ref, typ)
	}
}
