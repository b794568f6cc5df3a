package checkpoint

import (
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadLlama2CReal(t *testing.T) {
	path := testutil.SharedData(t, "stories260K.bin")
	cfg, ts, err := ReadLlama2C(path)
	require.NoError(t, err)
	assert.Equal(t, LlamaConfig{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, MaxSeq: 512,
		RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, Architecture: "LlamaForCausalLM", TorchDType: "float32"}, *cfg)
	require.Len(t, ts, 1+5*9+1, "embedding, 9 tensors a layer, final norm; no lm_head (tied)")
	shapes := map[string][]int{}
	total := 0
	for _, nt := range ts {
		shapes[nt.Name] = nt.T.Shape
		total += nt.T.NumElements()
		require.Len(t, nt.T.Data, 4*nt.T.NumElements())
	}
	// 264,128 floats in the file minus the two RoPE tables (512 * 8/2 floats each).
	assert.Equal(t, 264128-2*512*4, total)
	assert.Equal(t, []int{512, 64}, shapes["model.embed_tokens.weight"])
	assert.Equal(t, []int{64, 64}, shapes["model.layers.4.self_attn.q_proj.weight"])
	assert.Equal(t, []int{32, 64}, shapes["model.layers.0.self_attn.k_proj.weight"])
	assert.Equal(t, []int{32, 64}, shapes["model.layers.2.self_attn.v_proj.weight"])
	assert.Equal(t, []int{64, 64}, shapes["model.layers.3.self_attn.o_proj.weight"])
	assert.Equal(t, []int{172, 64}, shapes["model.layers.1.mlp.gate_proj.weight"])
	assert.Equal(t, []int{172, 64}, shapes["model.layers.1.mlp.up_proj.weight"])
	assert.Equal(t, []int{64, 172}, shapes["model.layers.1.mlp.down_proj.weight"])
	assert.Equal(t, []int{64}, shapes["model.layers.0.input_layernorm.weight"])
	assert.Equal(t, []int{64}, shapes["model.layers.0.post_attention_layernorm.weight"])
	assert.Equal(t, []int{64}, shapes["model.norm.weight"])
	_, hasHead := shapes["lm_head.weight"]
	assert.False(t, hasHead)

	// Independent of the reader's offsets bookkeeping: the embedding starts right after the
	// header and the final norm sits just before the RoPE tables, read straight from bytes.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	f32at := func(idx int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(raw[28+4*idx:])) }
	byName := map[string]*tensor.Tensor{}
	for _, nt := range ts {
		byName[nt.Name] = nt.T
	}
	assert.Equal(t, f32at(0), byName["model.embed_tokens.weight"].F32()[0])
	ropeStart := 264128 - 2*512*4
	assert.Equal(t, f32at(ropeStart-1), byName["model.norm.weight"].F32()[63])
	// Layer 0 wq row 1 (head 0, pair 0, second element) becomes HF row hd/2 = 4.
	wqStart := 512*64 + 5*64
	for c := 0; c < 64; c++ {
		assert.Equal(t, f32at(wqStart+1*64+c), byName["model.layers.0.self_attn.q_proj.weight"].F32()[4*64+c])
	}
	// The RMSNorm weights of a trained model are positive and of order one: a misaligned
	// read would not give that.
	for _, v := range byName["model.norm.weight"].F32() {
		assert.Greater(t, v, float32(0))
		assert.Less(t, v, float32(20))
	}
}

// llama2cFile builds a tiny llama2.c image with values 0, 1, 2, ... so that every tensor's
// position is checkable.
func llama2cFile(dim, hidden, layers, heads, kvHeads, vocab, seq int) []byte {
	kv := dim * kvHeads / heads
	n := abs(vocab)*dim + layers*(2*dim+2*dim*dim+2*kv*dim+3*hidden*dim) + dim + seq*(dim/heads)
	if vocab < 0 {
		n += -vocab * dim
	}
	b := make([]byte, 28+4*n)
	for i, v := range []int{dim, hidden, layers, heads, kvHeads, vocab, seq} {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[28+4*i:], math.Float32bits(float32(i)))
	}
	return b
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestReadLlama2CUntied(t *testing.T) {
	p := testutil.WriteFile(t, t.TempDir(), "m.bin", llama2cFile(8, 12, 1, 2, 1, -5, 3))
	cfg, ts, err := ReadLlama2C(p)
	require.NoError(t, err)
	assert.False(t, cfg.TiedEmbeddings)
	assert.Equal(t, 5, cfg.Vocab)
	last := ts[len(ts)-1]
	require.Equal(t, "lm_head.weight", last.Name)
	assert.Equal(t, []int{5, 8}, last.T.Shape)
	// Floats before wcls: 40 emb + 1 layer (16+128+2*32+3*96=496) + 8 + 2 * 3*4/2 rope = 556.
	assert.Equal(t, float32(556), last.T.F32()[0])
	k := ts[2] // k_proj, 1 kv head of dim 4: rows 0,1,2,3 interleaved -> 0,2,1,3
	require.Equal(t, "model.layers.0.self_attn.k_proj.weight", k.Name)
	kStart := float32(40 + 8 + 64)
	col0 := []float32{k.T.F32()[0], k.T.F32()[8], k.T.F32()[16], k.T.F32()[24]}
	assert.Equal(t, []float32{kStart, kStart + 16, kStart + 8, kStart + 24}, col0)
}

func TestReadLlama2CErrors(t *testing.T) {
	good := llama2cFile(8, 12, 1, 2, 1, 5, 3)
	badHeads := llama2cFile(8, 12, 1, 3, 1, 5, 3)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short":     {good[:20], "shorter than the 28-byte header"},
		"truncated": {good[:len(good)-4], "file truncated"},
		"trailing":  {append(append([]byte(nil), good...), 0, 0, 0, 0), "file has trailing bytes"},
		"odd":       {good[:len(good)-1], "file truncated"},
		"heads":     {badHeads, "does not divide by num_attention_heads"},
		"zero dim":  {make([]byte, 28), "hidden_size must be positive"},
		"ak42":      {append([]byte("ak42"), make([]byte, 60)...), "versioned (ak42) checkpoints are not supported"},
		"pytorch":   {append([]byte("PK\x03\x04"), make([]byte, 60)...), "looks like a PyTorch (zip) checkpoint"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := testutil.WriteFile(t, t.TempDir(), "m.bin", c.data)
			_, _, err := ReadLlama2C(p)
			require.Error(t, err)
			assert.ErrorContains(t, err, c.want)
			assert.True(t, strings.Contains(err.Error(), p), "error names the file: %v", err)
		})
	}
	// A hostile header must not overflow into a plausible size or allocate.
	huge := llama2cFile(8, 12, 1, 2, 1, 5, 3)
	binary.LittleEndian.PutUint32(huge[0:], uint32(1<<30))
	binary.LittleEndian.PutUint32(huge[12:], uint32(1<<29))
	binary.LittleEndian.PutUint32(huge[16:], uint32(1<<29))
	p := testutil.WriteFile(t, t.TempDir(), "huge.bin", huge)
	_, _, err := ReadLlama2C(p)
	assert.ErrorContains(t, err, "file truncated")
}
