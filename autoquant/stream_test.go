package autoquant

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamRun runs the streaming pipeline on the small synthetic model into dir/name.
func streamRun(t *testing.T, dir, name string, so StreamOptions, schemes ...string) *RunReport {
	t.Helper()
	src, d := small(t)
	opts := PipelineOptions{Src: src, Data: d, Out: filepath.Join(dir, name), TargetBits: 5.3, Target: "transformers",
		Gate: Gate{MaxPPLIncrease: -1, MaxKL: -1}}
	for _, s := range schemes {
		opts.Schemes = append(opts.Schemes, mustRecipe(t, s))
	}
	rep, err := RunStreaming(Env{}, opts, so)
	require.NoError(t, err)
	require.True(t, rep.Exported)
	return rep
}

func exportBytes(t *testing.T, dir string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	return b
}

// The streaming pipeline's exact sensitivity (from each block's cached input forwards)
// and its export equal the in-memory pipeline's.
func TestStreamingEqualsInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two end-to-end runs")
	}
	dir := t.TempDir()
	src, d := small(t)
	opts := PipelineOptions{Src: src, Data: d, Out: filepath.Join(dir, "mem"), TargetBits: 5.3, Target: "transformers",
		Schemes: []quant.Recipe{mustRecipe(t, "w4g32a"), mustRecipe(t, "w8")}, Gate: Gate{MaxPPLIncrease: -1, MaxKL: -1}}
	mem, err := RunPipeline(Env{}, opts)
	require.NoError(t, err)
	str := streamRun(t, dir, "stream", StreamOptions{}, "w4g32a", "w8")
	require.Equal(t, len(mem.Sensitivity.Layers), len(str.Sensitivity.Layers))
	for i, l := range mem.Sensitivity.Layers {
		s := str.Sensitivity.Layers[i]
		require.Equal(t, l.Name, s.Name)
		for c, dm := range l.Damage {
			assert.InDelta(t, dm.KL, s.Damage[c].KL, 1e-9*max(1, dm.KL), "%s %s", l.Name, c)
		}
	}
	assert.Equal(t, mem.Layers, str.Layers)
	assert.Equal(t, mem.Verify.CandidatePPL, str.Verify.CandidatePPL)
	assert.Equal(t, exportBytes(t, opts.Out), exportBytes(t, filepath.Join(dir, "stream")))
}

// Exact sensitivity keeps the GPTQ candidates it rounds, and the quantize pass takes the
// planned ones from there: the export is, bit for bit, the one a run without the cache
// writes (its quantize pass collects the Hessians again and runs GPTQ).
func TestCandidateCacheGivesTheSameExport(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two end-to-end runs")
	}
	dir := t.TempDir()
	cached := streamRun(t, dir, "cached", StreamOptions{KeepWork: true}, "w4g32a", "w4g16a", "w8")
	work := defaultWorkDir(filepath.Join(dir, "cached"))
	f, err := safetensors.Open(filepath.Join(work, blockFile("cand", 0, ".safetensors")))
	require.NoError(t, err, "the cache holds block 0's GPTQ candidates")
	f.Close()

	noCacheForTest = true
	defer func() { noCacheForTest = false }()
	fresh := streamRun(t, dir, "fresh", StreamOptions{KeepWork: true}, "w4g32a", "w4g16a", "w8")
	_, err = os.Stat(filepath.Join(defaultWorkDir(filepath.Join(dir, "fresh")), "cand"))
	require.True(t, os.IsNotExist(err), "no cache without it")
	assert.Equal(t, cached.Layers, fresh.Layers)
	assert.Equal(t, exportBytes(t, filepath.Join(dir, "cached")), exportBytes(t, filepath.Join(dir, "fresh")))
}

// A run resumed from a complete work directory reuses every stored block and publishes
// the same export.
func TestStreamingResumeReusesTheWorkDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two end-to-end runs")
	}
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	first := streamRun(t, dir, "first", StreamOptions{WorkDir: work, KeepWork: true, Sensitivity: SensProxy}, "w4g32a", "w8")
	again := streamRun(t, dir, "again", StreamOptions{WorkDir: work, Resume: true, Sensitivity: SensProxy}, "w4g32a", "w8")
	assert.Contains(t, again.Stages[0].Detail, "4 of 4 blocks from the work directory")
	assert.Equal(t, first.Layers, again.Layers)
	assert.Equal(t, exportBytes(t, filepath.Join(dir, "first")), exportBytes(t, filepath.Join(dir, "again")))
	_, err := os.Stat(work)
	assert.True(t, os.IsNotExist(err), "without --keep-work the resumed run removes the work directory")
}

// The proxy ranks round-to-nearest candidates (no GPTQ in the sensitivity pass, so nothing
// to cache) and the quantize pass runs GPTQ on the planned scheme: the export is the one an
// exact run forced to the same plan writes.
func TestProxyRanksRoundToNearestAndQuantizesWithGPTQ(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two end-to-end runs")
	}
	dir := t.TempDir()
	px := streamRun(t, dir, "proxy", StreamOptions{Sensitivity: SensProxy, KeepWork: true}, "w4g32a", "w8")
	_, err := os.Stat(filepath.Join(defaultWorkDir(filepath.Join(dir, "proxy")), "cand"))
	require.True(t, os.IsNotExist(err), "the proxy pass rounds no GPTQ candidate")

	src, d := small(t)
	opts := PipelineOptions{Src: src, Data: d, Out: filepath.Join(dir, "exact"), TargetBits: 5.3, Target: "transformers",
		Schemes: []quant.Recipe{mustRecipe(t, "w4g32a"), mustRecipe(t, "w8")}, Gate: Gate{MaxPPLIncrease: -1, MaxKL: -1}}
	for name, s := range px.Layers {
		opts.Overrides = append(opts.Overrides, plan.Rule{Pattern: name, Scheme: mustRecipe(t, s)})
	}
	ex, err := RunStreaming(Env{}, opts, StreamOptions{})
	require.NoError(t, err)
	require.Equal(t, px.Layers, ex.Layers)
	assert.Equal(t, exportBytes(t, filepath.Join(dir, "exact")), exportBytes(t, filepath.Join(dir, "proxy")))
}
