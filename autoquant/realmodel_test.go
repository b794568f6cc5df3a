package autoquant

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/plan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRealModelExportAndGoals runs on stories260K (skipped when ../shared/data is absent):
// the export of a mixed plan reproduces the evaluated model's logits bit for bit, and the
// 8-bit schemes meet the accuracy goals on held-out text.
func TestRealModelExportAndGoals(t *testing.T) {
	src, d := stories(t, "the real-model accuracy checks take minutes", DataOptions{CalibTokens: 4096, SensTokens: 256, EvalTokens: 8192})
	qz := calibrated(t, src, d)

	cand, err := src.NewModel()
	require.NoError(t, err)
	layers, err := ApplyPlan(cand, mixedPlan(t), qz, nil)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "export")
	require.NoError(t, exportWrite(dir, ExportModel(src, cand, layers)))
	assert.FileExists(t, filepath.Join(dir, "tok512.bin"))
	got, _, err := LoadExported(dir)
	require.NoError(t, err)
	assert.Equal(t, forwardAll(t, cand, d.Eval[:4]), forwardAll(t, got, d.Eval[:4]))

	base, err := src.NewModel()
	require.NoError(t, err)
	for _, s := range []string{"w8", "w8a8"} {
		m, err := src.NewModel()
		require.NoError(t, err)
		_, err = ApplyPlan(m, plan.Uniform(mustRecipe(t, s), 16), qz, nil)
		require.NoError(t, err)
		r, err := CompareModels(base, m, d.Eval, src.Tok.BOS(), 8, Gate{MaxPPLIncrease: 0.003})
		require.NoError(t, err)
		assert.True(t, r.Pass, "%s: %+v", s, r)
		t.Logf("%s: ppl %.4f -> %.4f (%+.3f%%), KL %.5f", s, r.BaselinePPL, r.CandidatePPL, 100*r.PPLIncrease, r.KL)
	}
}
