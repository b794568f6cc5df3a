package autoquant

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
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
	p, checked := &pipeline{work: &workDir{dir: work}}, 0
	for b := 0; b < 4; b++ { // every planned GPTQ layer is in the cache: quantize needs no Hessians
		names, err := p.candidateNames(b)
		require.NoError(t, err)
		for layer, s := range cached.Layers {
			if strings.HasPrefix(layer, fmt.Sprintf("model.layers.%d.", b)) && s != "w8c" {
				assert.True(t, names[candName(layer, mustRecipe(t, s))], "%s as %s is cached", layer, s)
				checked++
			}
		}
	}
	require.Positive(t, checked, "the plan has GPTQ layers")

	noCacheForTest = true
	defer func() { noCacheForTest = false }()
	fresh := streamRun(t, dir, "fresh", StreamOptions{KeepWork: true}, "w4g32a", "w4g16a", "w8")
	_, err := os.Stat(filepath.Join(defaultWorkDir(filepath.Join(dir, "fresh")), "cand"))
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

// The proxy damage is the relative squared error a layer's round-to-nearest candidate
// causes at its block's output, on the first sensitivity windows: recomputed here from
// the model directly for one layer.
func TestProxyIsTheRelativeErrorAtTheBlockOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: an end-to-end run")
	}
	rep := streamRun(t, t.TempDir(), "proxy", StreamOptions{Sensitivity: SensProxy}, "w4g32a", "w8")
	src, d := small(t)
	m, err := src.NewModel()
	require.NoError(t, err)
	const b, name = 2, "model.layers.2.mlp.up_proj"
	wins := proxyWindows(d.Sens)
	h, err := m.Embed(wins)
	require.NoError(t, err)
	require.NoError(t, m.RunBlocks(h, 0, b, nil))
	ref := h.Clone()
	require.NoError(t, m.RunBlocks(ref, b, b+1, nil))
	for _, s := range []string{"w4g32a", "w8c"} {
		l, err := (&Quantizers{}).Quantize(m, name, proxyRecipe(mustRecipe(t, s)))
		require.NoError(t, err)
		require.NoError(t, m.SetLinear(name, l.Linear))
		got := h.Clone()
		require.NoError(t, m.RunBlocks(got, b, b+1, nil))
		require.NoError(t, m.ResetLinear(name))
		var e, pw float64
		for i, v := range ref.X {
			dv := float64(got.X[i]) - float64(v)
			e, pw = e+dv*dv, pw+float64(v)*float64(v)
		}
		var proxy float64
		for _, ls := range rep.Sensitivity.Layers {
			if ls.Name == name {
				proxy = ls.Damage[s].KL
			}
		}
		require.Greater(t, e, 0.0, s)
		assert.InDelta(t, e/pw, proxy, 1e-9*e/pw, "%s: relative block-output error", s)
	}
}

// Issue 14's goal for the proxy: its ranking of (layer, scheme) damages agrees with the
// exact one on the real model, Spearman >= 0.9.
func TestProxyRankAgreementOnTheRealModel(t *testing.T) {
	src, d := stories(t, "exact sensitivity of the real model", DataOptions{CalibTokens: 8192, SensTokens: 2048, EvalTokens: 1024})
	opts := PipelineOptions{Src: src, Data: d, Out: filepath.Join(t.TempDir(), "out"), TargetBits: 5.3, Target: "transformers",
		Gate: Gate{MaxPPLIncrease: -1, MaxKL: -1}}
	rep, err := RunStreaming(Env{}, opts, StreamOptions{CompareProxy: true})
	require.NoError(t, err)
	require.NotNil(t, rep.ProxySpearman)
	t.Logf("proxy rank agreement (Spearman) on stories260K: %.3f", *rep.ProxySpearman)
	assert.GreaterOrEqual(t, *rep.ProxySpearman, 0.9)
}

func TestProxyWindowsArePrefixOfProxyTokens(t *testing.T) {
	wins := make([][]int, 10)
	for i := range wins {
		wins[i] = make([]int, 100)
	}
	assert.Len(t, proxyWindows(wins), 6, "whole windows until 512 tokens are reached")
	assert.Len(t, proxyWindows(wins[:3]), 3, "fewer tokens: all of them")
	assert.Len(t, proxyWindows([][]int{make([]int, 2048)}), 1, "at least one window")
}
