package model

import (
	"math"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// halfTensors is randomTensors stored as d (BF16 or F16), as a checkpoint would hold them.
func halfTensors(cfg checkpoint.LlamaConfig, seed uint64, d tensor.DType) map[string]*tensor.Tensor {
	ts := randomTensors(cfg, seed)
	for n, t := range ts {
		ts[n] = t.Convert(d)
	}
	return ts
}

// A lazy model over a BF16 or F16 checkpoint keeps its embedding and lm_head 16-bit and
// gives the bits of the float32 model (New over the same tensors) on batches that take
// the packed kernel and its tail rows, the scalar path (one row), tied or not.
func TestLazyHalfFixedSameBitsAsF32(t *testing.T) {
	for _, d := range []tensor.DType{tensor.BF16, tensor.F16} {
		for _, tied := range []bool{false, true} {
			cfg := tinyConfig()
			cfg.TiedEmbeddings = tied
			ts := halfTensors(cfg, 21, d)
			if tied {
				delete(ts, "lm_head.weight")
			}
			full, err := New(cfg, ts)
			require.NoError(t, err)
			lazy, err := NewLazy(cfg, newMapSource(ts), LazyOptions{})
			require.NoError(t, err)
			assert.Equal(t, d, lazy.Weight("model.embed_tokens.weight").DType, "the embedding stays as stored")
			assert.Equal(t, tensor.F32, full.Weight("model.embed_tokens.weight").DType)
			if !tied {
				assert.Equal(t, d, lazy.Weight("lm_head.weight").DType)
			}
			up := "model.layers.1.mlp.up_proj"
			assert.Equal(t, d, lazy.Weight(up+".weight").DType, "block weights stay as stored")
			assert.Nil(t, lazy.Linear(up).(*Dense).W, "no float32 copy of a block weight")
			assert.Equal(t, full.Linear(up).(*Dense).W, lazy.Linear(up).(*Dense).Weights())
			require.NoError(t, lazy.SetLinear(up, full.Linear(up)))
			require.NoError(t, lazy.ResetLinear(up)) // the logits below are the reset layer's
			assert.Nil(t, lazy.Linear(up).(*Dense).W, "reset: 16-bit again")
			for _, seqs := range [][][]int{{{3}}, {{1, 2, 3, 4, 5, 6}}, {{7, 8, 9, 10, 11, 12, 13}, {39, 0, 5}}} {
				want, err := full.Forward(seqs, nil)
				require.NoError(t, err)
				got, err := lazy.Forward(seqs, nil)
				require.NoError(t, err)
				for b := range want {
					for i := range want[b] {
						require.Equal(t, math.Float32bits(want[b][i]), math.Float32bits(got[b][i]), "%s tied=%v seqs %v: logit %d of %d", d, tied, seqs, i, b)
					}
				}
			}
		}
	}
}

// The matmul over 16-bit weights equals the matmul over their float32 values bit for bit,
// packed (partial panels and units) and scalar.
func TestMatmulHalfRowsSameBits(t *testing.T) {
	r := testutil.Rand(23)
	for _, s := range [][3]int{{1, 40, 16}, {3, 17, 5}, {4, 16, 1}, {67, 45, 33}, {130, 100, 257}} {
		M, N, K := s[0], s[1], s[2]
		x := testutil.Gaussian(r, M*K, 1)
		for _, d := range []tensor.DType{tensor.BF16, tensor.F16} {
			ht := tensor.FromF32(testutil.Gaussian(r, N*K, 3), N, K).Convert(d)
			w := ht.ToF32()
			h := &halfMatrix{bits: ht.U16(), dtype: d, N: N, K: K}
			for _, packed := range []bool{false, true} {
				if packed && !usePacked(M, N, K) {
					continue
				}
				got, want := make([]float32, M*N), make([]float32, M*N)
				if packed {
					matmulPackedRows(got, x, h, M, N, K)
					matmulPacked(want, x, w, M, N, K)
				} else {
					matmulScalarRows(got, x, h, M, N, K)
					matmulScalar(want, x, w, M, N, K)
				}
				for i := range want {
					require.Equal(t, math.Float32bits(want[i]), math.Float32bits(got[i]), "%v %s packed=%v output %d", s, d, packed, i)
				}
			}
		}
	}
}

// A non-finite value in a 16-bit embedding is an error naming the tensor and the element,
// as for a float32 one.
func TestLazyHalfEmbeddingNonFinite(t *testing.T) {
	cfg := tinyConfig()
	ts := halfTensors(cfg, 22, tensor.BF16)
	emb := ts["model.embed_tokens.weight"]
	bits := append([]uint16(nil), emb.U16()...)
	bits[300] = 0x7fc0 // NaN
	ts["model.embed_tokens.weight"] = tensor.FromU16(tensor.BF16, bits, emb.Shape...)
	_, err := NewLazy(cfg, newMapSource(ts), LazyOptions{})
	require.ErrorContains(t, err, "model.embed_tokens.weight has a non-finite value")
	assert.ErrorContains(t, err, "element 300")
}

// A lazy model with HeadOnUse checks its lm_head when built but reads it only when the head
// runs, gives the logits of the model that read it at once, and reads it again after
// ReleaseHead; a bad lm_head is still an error when the model is built.
func TestLazyHeadOnUse(t *testing.T) {
	cfg := tinyConfig()
	ts := halfTensors(cfg, 23, tensor.BF16)
	full, err := NewLazy(cfg, newMapSource(ts), LazyOptions{})
	require.NoError(t, err)
	src := newMapSource(ts)
	var released []string
	lazy, err := NewLazy(cfg, src, LazyOptions{HeadOnUse: true, Release: func(n []string) { released = append(released, n...) }})
	require.NoError(t, err)
	assert.Equal(t, 1, src.reads["lm_head.weight"], "checked when built")
	assert.Contains(t, released, "lm_head.weight")
	assert.NotContains(t, lazy.WeightNames(), "lm_head.weight", "not held")
	seqs := [][]int{{1, 2, 3, 4, 5, 6}, {7, 8}}
	want, err := full.Forward(seqs, nil)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		got, err := lazy.Forward(seqs, nil)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		assert.Equal(t, 2+i, src.reads["lm_head.weight"], "read when the head runs")
		assert.Equal(t, tensor.BF16, lazy.Weight("lm_head.weight").DType)
		lazy.ReleaseHead()
		assert.NotContains(t, lazy.WeightNames(), "lm_head.weight")
	}
	assert.Equal(t, ts["lm_head.weight"].Data, lazy.FixedTensor("lm_head.weight").Data, "FixedTensor reads it too")

	bad := halfTensors(cfg, 23, tensor.BF16)
	bad["lm_head.weight"] = bad["lm_head.weight"].Convert(tensor.F32)
	bad["lm_head.weight"].F32()[7] = float32(math.Inf(1))
	_, err = NewLazy(cfg, newMapSource(bad), LazyOptions{HeadOnUse: true})
	assert.ErrorContains(t, err, "lm_head.weight has a non-finite value +Inf at element 7")
	delete(bad, "lm_head.weight")
	_, err = NewLazy(cfg, newMapSource(bad), LazyOptions{HeadOnUse: true})
	assert.ErrorContains(t, err, "missing tensor lm_head.weight")
}
