package rotate

import (
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stories260K (dim 64, hidden 172, 8 heads, 4 key/value heads, head_dim 8, tied): the
// rotated model's logits equal the original's.
func TestStoriesRotatedLogitsMatch(t *testing.T) {
	cfg, ts, err := checkpoint.ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	require.Equal(t, 64, cfg.Dim)
	require.Equal(t, 8, cfg.HeadDim())
	tokens := tokenBatch(cfg.Vocab, 48, 20)
	want := logits(t, *cfg, byName(ts), tokens)
	for _, opt := range []Options{{}, {Kind: Random}} {
		rcfg, rts, err := Checkpoint(*cfg, ts, 2024, opt)
		require.NoError(t, err)
		e := relErr(want, logits(t, rcfg, byName(rts), tokens))
		t.Logf("%s: relative logit error %.2e", opt.Kind, e)
		assert.LessOrEqual(t, e, 1e-5, opt.Kind)
	}
}
