package synth

import (
	"testing"

	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Parameter counts of the released models (Hugging Face model cards / num_parameters()):
// the shape table reproduces them exactly, without writing anything.
func TestShapeTableParams(t *testing.T) {
	for _, c := range []struct {
		name    string
		params  int64
		largest int64 // bytes of the largest BF16 tensor
	}{
		{"llama2-7b", 6_738_415_616, 32000 * 4096 * 2},
		{"llama2-13b", 13_015_864_320, 32000 * 5120 * 2},
		{"llama3-8b", 8_030_261_248, 128256 * 4096 * 2},
		{"llama2-70b", 68_976_648_192, 32000 * 8192 * 2},
		// 8 x (4 x 1024^2 + 3 x 1024 x 2816 + 2 x 1024) + 2 x 32000 x 1024 + 1024, by hand.
		{"llama-100m", 168_313_856, 32000 * 1024 * 2},
	} {
		s, err := LookupShape(c.name)
		require.NoError(t, err)
		p, err := NewPlan(Options{Name: c.name, Config: s.Config})
		require.NoError(t, err)
		assert.Equal(t, c.params, p.Params, c.name)
		assert.Equal(t, 2*c.params, p.Bytes, c.name)
		assert.Equal(t, c.largest, p.LargestTensor(), c.name)
		assert.Equal(t, "bfloat16", p.Opt.Config.TorchDType)
		// Every shard but a lone oversized tensor stays within the limit, and the shards
		// hold every tensor once, in order.
		next := 0
		for _, sh := range p.Shards {
			assert.True(t, sh.Bytes <= DefaultShardSize || len(sh.Tensors) == 1, "%s: %s has %d bytes", c.name, sh.File, sh.Bytes)
			for _, i := range sh.Tensors {
				assert.Equal(t, next, i)
				next++
			}
		}
		assert.Equal(t, len(p.Tensors), next)
	}
}

// Two layers of llama2-7b, by hand: embedding and lm_head 32000x4096, final norm 4096, per
// layer q/k/v/o 4096x4096, gate/up 11008x4096, down 4096x11008 and two norms.
func TestPlanTwoLayers(t *testing.T) {
	s, err := LookupShape("llama2-7b")
	require.NoError(t, err)
	cfg := s.Config
	cfg.Layers = 2
	p, err := NewPlan(Options{Config: cfg, ShardSize: 600_000_000})
	require.NoError(t, err)
	perLayer := int64(4*4096*4096 + 3*4096*11008 + 2*4096)
	assert.Equal(t, int64(2*32000*4096+4096)+2*perLayer, p.Params)
	assert.Len(t, p.Tensors, 1+2*9+2)
	assert.Equal(t, "lm_head.weight", p.Tensors[len(p.Tensors)-1].Name)
	// Greedy packing in file order (a new shard when the next tensor would pass 600 MB),
	// recomputed from the sizes.
	var shards []int64
	var cur int64 = -1
	for _, ts := range p.Tensors {
		b := ts.Elements() * 2
		if cur < 0 || (cur > 0 && cur+b > 600_000_000) {
			shards = append(shards, 0)
			cur = 0
		}
		cur += b
		shards[len(shards)-1] = cur
	}
	require.Len(t, p.Shards, len(shards))
	for i, sh := range p.Shards {
		assert.Equal(t, shards[i], sh.Bytes)
		assert.Regexp(t, `^model-0000[1-9]-of-0000[1-9]\.safetensors$`, sh.File)
	}
	assert.Equal(t, []int{}, badDims(p.OutlierDims, 4096))
	assert.Len(t, p.OutlierDims, 4)
}

// badDims returns the dimensions out of [0, n) or not strictly increasing.
func badDims(dims []int, n int) []int {
	bad := []int{}
	for i, d := range dims {
		if d < 0 || d >= n || (i > 0 && d <= dims[i-1]) {
			bad = append(bad, d)
		}
	}
	return bad
}

func TestPlanErrors(t *testing.T) {
	s, _ := LookupShape("tiny")
	_, err := NewPlan(Options{Config: s.Config, DType: tensor.F32})
	assert.ErrorContains(t, err, "dtype F32: want BF16 or F16")
	bad := s.Config
	bad.Heads = 3
	_, err = NewPlan(Options{Config: bad})
	assert.ErrorContains(t, err, "does not divide")
	_, err = LookupShape("llama9")
	assert.ErrorContains(t, err, `unknown shape "llama9" (known: llama-100m, llama2-13b, llama2-70b, llama2-7b, llama3-8b, tiny)`)
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"2GB": 2_000_000_000, "5gb": 5_000_000_000, "1GiB": 1 << 30,
		"500MB": 500_000_000, "1.5 KiB": 1536, "123": 123, "64b": 64, "10TB": 10_000_000_000_000} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "GB", "-1GB", "0", "two GB", "1e30", "NaN"} {
		_, err := ParseSize(in)
		assert.ErrorContains(t, err, "want a positive number of bytes", in)
	}
}
