package autoquant

import (
	"math"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/stretchr/testify/assert"
)

// hostPeak on a small shape, every term computed by hand: the quantize moment (GPTQ's
// working set outweighs the small batch's activations) is the larger.
func TestHostPeakHandComputed(t *testing.T) {
	cfg := checkpoint.LlamaConfig{Dim: 16, HiddenDim: 24, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 40}
	s := hostShape{elem: 2, blocks: 2, batchRows: 10, headRows: 4, calibRows: 30, evalRows: 20}
	fixed := int64(2*40*16 + 4*16)                                     // embedding, norm
	head := int64(2 * 40 * 16)                                         // lm_head: held in verify only
	block := int64(2 * (2*16 + 16*16 + 8*16 + 8*16 + 16*16 + 3*24*16)) // norms, q k v o, gate up down
	base := fixed + 2*block
	quantize := base + 8*(3*16*16+24*24) + (8*24*24 + 3*4*16*24) + 4*16*30 // Hessians, GPTQ's working set, states
	verify := base + head + block + (16*80 + 16*24) + 2*4*16*20 + 2*4*40*4 // candidate, work(4), states, logits
	assert.Equal(t, int64(9152), base)
	assert.Greater(t, quantize, verify)
	assert.Equal(t, quantize, hostPeak(cfg, s))
	s.batchRows = 100 // now the calibration batch's activations outweigh GPTQ's working set
	assert.Equal(t, base+8*(3*16*16+24*24)+(4*100*80+4*100*24)+4*16*30, hostPeak(cfg, s))
	s.batchRows, s.evalRows = 10, 1000 // and now verifying is the heavier moment
	assert.Equal(t, base+head+block+(16*80+16*24)+2*4*16*1000+2*4*40*4, hostPeak(cfg, s))
}

// The limit is the peak plus 25%, and none when the user set GOMEMLIMIT, a limit is
// already set, or there is no estimate.
func TestSoftLimit(t *testing.T) {
	assert.Equal(t, int64(1000), softLimit("", math.MaxInt64, 800))
	assert.Zero(t, softLimit("600MiB", math.MaxInt64, 800))
	assert.Zero(t, softLimit("", 1<<30, 800))
	assert.Zero(t, softLimit("", math.MaxInt64, 0))
}
