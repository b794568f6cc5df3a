package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stories(t *testing.T) (*checkpoint.Opened, *Vocab, string) {
	t.Helper()
	bin := testutil.SharedData(t, "stories260K.bin")
	ck, err := checkpoint.OpenAny(bin)
	require.NoError(t, err)
	tok, err := tokenizer.LoadLlama2C(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	v, err := VocabFromLlama2C(tok)
	require.NoError(t, err)
	return ck, v, bin
}

// rawLlama2C reads float32 array number idx of the llama2.c file directly (the file's own
// layout, independent of checkpoint.ReadLlama2C): wq of layer l starts after the header,
// the embedding [V,D], rms_att [L,D] and l matrices [D,D].
func rawFloats(t *testing.T, bin string, offFloats, n int) []float32 {
	raw, err := os.ReadFile(bin)
	require.NoError(t, err)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[28+4*(offFloats+i):]))
	}
	return out
}

func TestWriteLlamaStoriesF32(t *testing.T) {
	ck, vocab, bin := stories(t)
	cfg := ck.Config
	p := filepath.Join(t.TempDir(), "s.gguf")
	require.NoError(t, WriteLlama(p, ck, cfg, ModelOptions{Name: "stories260K", Vocab: vocab}))
	f, err := Open(p)
	require.NoError(t, err)
	defer f.Close()

	for key, want := range map[string]any{
		"general.architecture": "llama", "general.name": "stories260K", "general.file_type": uint32(0),
		"llama.context_length": uint32(512), "llama.embedding_length": uint32(64), "llama.block_count": uint32(5),
		"llama.feed_forward_length": uint32(172), "llama.attention.head_count": uint32(8),
		"llama.attention.head_count_kv": uint32(4), "llama.rope.dimension_count": uint32(8),
		"llama.rope.freq_base": float32(10000), "llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.vocab_size": uint32(512), "tokenizer.ggml.model": "llama", "tokenizer.ggml.bos_token_id": uint32(1),
		"tokenizer.ggml.eos_token_id": uint32(2), "tokenizer.ggml.unknown_token_id": uint32(0), "tokenizer.ggml.add_bos_token": true,
	} {
		got, ok := f.Get(key)
		require.True(t, ok, key)
		assert.Equal(t, want, got, key)
	}
	_, hasQV := f.Get("general.quantization_version")
	assert.False(t, hasQV, "an F32 file has no quantization version")

	names := make([]string, len(f.Tensors))
	for i, ti := range f.Tensors {
		names[i] = ti.Name
	}
	sort.Strings(names)
	assert.Len(t, names, 2+5*9, "tied embeddings: no output tensor")
	assert.NotContains(t, names, "output.weight")
	q, ok := f.Tensor("blk.3.attn_q.weight")
	require.True(t, ok)
	assert.Equal(t, []int{64, 64}, q.Shape)
	k, _ := f.Tensor("blk.3.attn_k.weight")
	assert.Equal(t, []int{32, 64}, k.Shape)
	down, _ := f.Tensor("blk.0.ffn_down.weight")
	assert.Equal(t, []int{64, 172}, down.Shape)

	// RoPE: llama.cpp's llama architecture wants llama2.c's own (interleaved) q/k rows, so
	// the GGUF tensors equal the file's wq/wk bytes, undoing ReadLlama2C's permutation.
	const V, D, L, KV = 512, 64, 5, 32
	wqOff := V*D + L*D + 3*D*D
	wkOff := V*D + L*D + L*D*D + 3*KV*D
	for _, c := range []struct {
		name string
		off  int
		n    int
	}{{"blk.3.attn_q.weight", wqOff, D * D}, {"blk.3.attn_k.weight", wkOff, KV * D}, {"token_embd.weight", 0, V * D}} {
		raw, err := f.TensorData(c.name)
		require.NoError(t, err)
		got, err := Dequantize(c.name, F32, 1, c.n, raw)
		require.NoError(t, err)
		assert.Equal(t, rawFloats(t, bin, c.off, c.n), got, c.name)
	}
	toks, _ := f.Get("tokenizer.ggml.tokens")
	assert.Equal(t, "<s>", toks.([]string)[1])
	assert.NotContains(t, toks.([]string)[259:], " ", "spaces are spelled ▁")
	types, _ := f.Get("tokenizer.ggml.token_type")
	assert.Equal(t, []int32{TokenUnknown, TokenControl, TokenControl, TokenByte}, types.([]int32)[:4])
}

func TestWriteLlamaRefusesWidthTheTypeCannotHold(t *testing.T) {
	ck, vocab, _ := stories(t)
	p := filepath.Join(t.TempDir(), "s.gguf")
	err := WriteLlama(p, ck, ck.Config, ModelOptions{Vocab: vocab, Default: Q8_0})
	assert.ErrorContains(t, err, "tensor model.layers.0.mlp.down_proj.weight: width 172 is not a multiple of Q8_0's block size 32; keep it F16 or F32")
	err = WriteLlama(p, ck, ck.Config, ModelOptions{Vocab: vocab, Types: map[string]Type{"model.layers.1.self_attn.q_proj.weight": Q4_K}})
	assert.ErrorContains(t, err, "tensor model.layers.1.self_attn.q_proj.weight: width 64 is not a multiple of Q4_K's block size 256")
	err = WriteLlama(p, ck, ck.Config, ModelOptions{Vocab: &Vocab{Tokens: []string{"a"}, Scores: []float32{0}, Types: []int32{1}}})
	assert.ErrorContains(t, err, "the tokenizer has 1 tokens but the model's vocabulary has 512")
	_, statErr := os.Stat(p)
	assert.True(t, os.IsNotExist(statErr), "nothing written on error")

	// Everything but the 172-wide down projections as Q8_0 works.
	types := map[string]Type{}
	for l := 0; l < 5; l++ {
		types["model.layers."+string(rune('0'+l))+".mlp.down_proj.weight"] = F16
	}
	require.NoError(t, WriteLlama(p, ck, ck.Config, ModelOptions{Vocab: vocab, Default: Q8_0, Types: types}))
	f, err := Open(p)
	require.NoError(t, err)
	defer f.Close()
	ft, _ := f.Uint32("general.file_type")
	assert.Equal(t, uint32(7), ft, "mostly Q8_0")
	d, _ := f.Tensor("blk.2.ffn_down.weight")
	assert.Equal(t, F16, d.Type)
	g, _ := f.Tensor("blk.2.ffn_gate.weight")
	assert.Equal(t, Q8_0, g.Type)
}

// randomCheckpoint is a Hugging Face-layout model wide enough for the k-quants.
func randomCheckpoint(t *testing.T, tied bool) (*checkpoint.Memory, *checkpoint.LlamaConfig, *Vocab) {
	cfg := &checkpoint.LlamaConfig{Dim: 256, HiddenDim: 512, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 16, MaxSeq: 32,
		RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: tied, Architecture: "LlamaForCausalLM"}
	ts := llamatest.Tensors(*cfg, 3, llamatest.RandomNorms)
	var named []safetensors.NamedTensor
	for n, x := range ts {
		named = append(named, safetensors.NamedTensor{Name: n, T: x})
	}
	sort.Slice(named, func(a, b int) bool { return named[a].Name < named[b].Name })
	m, err := checkpoint.NewMemory(named, nil)
	require.NoError(t, err)
	v := &Vocab{BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	for i := 0; i < 16; i++ {
		v.Tokens = append(v.Tokens, string(rune('a'+i)))
		v.Scores = append(v.Scores, float32(-i))
		v.Types = append(v.Types, TokenNormal)
	}
	return m, cfg, v
}

func TestWriteLlamaPermutesPreQuantizedRowsLikeFloatRows(t *testing.T) {
	ck, cfg, vocab := randomCheckpoint(t, false)
	const qName = "model.layers.0.self_attn.q_proj.weight"
	const kName = "model.layers.0.self_attn.k_proj.weight"
	pre := map[string]*Quantized{}
	for _, n := range []string{qName, kName} {
		w, err := ck.Tensor(n)
		require.NoError(t, err)
		q, err := RefQuantize(n, Q4_K, w.F32(), w.Shape[0], w.Shape[1], nil)
		require.NoError(t, err)
		pre[n] = q
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "pre.gguf"), filepath.Join(dir, "float.gguf")
	require.NoError(t, WriteLlama(a, ck, cfg, ModelOptions{Vocab: vocab, Default: Q6_K, Quantized: pre}))
	require.NoError(t, WriteLlama(b, ck, cfg, ModelOptions{Vocab: vocab, Default: Q6_K, Types: map[string]Type{qName: Q4_K, kName: Q4_K}}))
	fa, err := Open(a)
	require.NoError(t, err)
	defer fa.Close()
	fb, err := Open(b)
	require.NoError(t, err)
	defer fb.Close()
	require.Equal(t, len(fa.Tensors), len(fb.Tensors))
	assert.Contains(t, fa.byName, "output.weight", "untied: output tensor written")
	for _, ti := range fb.Tensors {
		x, err := fa.TensorData(ti.Name)
		require.NoError(t, err)
		y, err := fb.TensorData(ti.Name)
		require.NoError(t, err)
		assert.Equal(t, y, x, "%s: quantize-then-permute equals permute-then-quantize (row-wise quantizer)", ti.Name)
	}
	qi, _ := fa.Tensor("blk.0.attn_q.weight")
	assert.Equal(t, Q4_K, qi.Type)
	ft, _ := fa.Uint32("general.file_type")
	assert.Equal(t, uint32(18), ft, "mostly Q6_K")
	qv, _ := fa.Uint32("general.quantization_version")
	assert.Equal(t, uint32(2), qv)
}

func TestRopeRowOrderMatchesUnpermuteRoPE(t *testing.T) {
	const rows, cols, heads = 16, 3, 2
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i)
	}
	un := checkpoint.UnpermuteRoPE(tensor.FromF32(w, rows, cols), heads).F32()
	from := ropeRowOrder(rows, heads)
	for r, f := range from {
		assert.Equal(t, w[f*cols:(f+1)*cols], un[r*cols:(r+1)*cols], "row %d", r)
		h, rem := r/8, r%8 // by hand: row h*8+2i+p comes from h*8+p*4+i
		assert.Equal(t, h*8+(rem%2)*4+rem/2, f)
	}
}

func TestVocabFromHF(t *testing.T) {
	tok, err := tokenizer.LoadHFJSON(filepath.Join(testutil.RepoRoot(t), "tokenizer", "testdata", "tiny_tokenizer.json"))
	require.NoError(t, err)
	v, err := VocabFromHF(tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>", "<0xE4>", "<0xB8>", "<0xAD>", "▁", "a", "b", "▁a", "ab", "▁ab", "c"}, v.Tokens)
	assert.Equal(t, []int32{TokenUnknown, TokenControl, TokenControl, TokenByte, TokenByte, TokenByte, TokenNormal, TokenNormal, TokenNormal, TokenNormal, TokenNormal, TokenNormal, TokenNormal}, v.Types)
	// merges "a b" rank 0 -> ab, "▁ a" rank 1 -> ▁a, "▁a b" rank 2 -> ▁ab
	assert.Equal(t, []float32{0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, -2, 0}, v.Scores)
	assert.Equal(t, 1, v.BOS)
	assert.Equal(t, 2, v.EOS)
	assert.Equal(t, 0, v.UNK)
}

func TestLlamaTensorsInvertsWriteLlama(t *testing.T) {
	for _, tied := range []bool{true, false} {
		_, cfg, vocab := randomCheckpoint(t, tied)
		cfg.Bias = true
		ts := llamatest.Tensors(*cfg, 4, llamatest.RandomNorms)
		var named []safetensors.NamedTensor
		for n, x := range ts {
			named = append(named, safetensors.NamedTensor{Name: n, T: x})
		}
		ckb, err := checkpoint.NewMemory(named, nil)
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), "m.gguf")
		require.NoError(t, WriteLlama(p, ckb, cfg, ModelOptions{Vocab: vocab, Default: F32}))
		f, err := Open(p)
		require.NoError(t, err)
		got, err := LlamaConfig(f)
		require.NoError(t, err)
		want := *cfg
		want.Architecture, want.TorchDType = "LlamaForCausalLM", "float32"
		assert.Equal(t, want, *got)
		back, err := LlamaTensors(f, got)
		require.NoError(t, err)
		f.Close()
		assert.Len(t, back, len(ts))
		for n, x := range ts {
			require.Contains(t, back, n)
			assert.Equal(t, x.Shape, back[n].Shape, n)
			assert.Equal(t, x.F32(), back[n].F32(), n)
		}
	}
	_, ok := HFName("blk.0.attn_q.scale")
	assert.False(t, ok)
}
