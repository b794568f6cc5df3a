package calibrun

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func baseOptions() Options {
	return Options{SeqLen: 16, Batch: 3, Split: "all", Shards: 1, Rounds: 3}
}

// The runner's histograms, one per linear name, equal binning every layer's input on its
// own, one window at a time; q/k/v and gate/up form groups.
func TestRunEqualsDirectBinning(t *testing.T) {
	m, docs, data := tinyCorpus(t, 40, 1)
	r, err := Run(m, data, nil, baseOptions())
	require.NoError(t, err)

	wins := cutWindows(docs, 16)
	require.Equal(t, len(wins), r.Windows)
	require.Equal(t, len(wins), r.Total)
	want := directHists(t, m, wins)
	got := r.Histograms()
	require.Len(t, got, len(want))
	require.Len(t, got, 2*7)
	for _, h := range got {
		w := want[h.Name]
		require.NotNil(t, w, h.Name)
		assert.Equal(t, w.Counts, h.Counts, h.Name)
		assert.Equal(t, w.Exp, h.Exp, h.Name)
		assert.Equal(t, w.AbsMax, h.AbsMax, h.Name)
		assert.Equal(t, w.Count, h.Count, h.Name)
		assert.Equal(t, w.ChannelAbsMax, h.ChannelAbsMax, h.Name)
	}
	require.Len(t, r.Groups, 2*4)
	assert.Equal(t, []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"}, r.Groups[0].Members)
	assert.Equal(t, []string{"model.layers.0.self_attn.o_proj"}, r.Groups[1].Members)
	assert.Equal(t, []string{"model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"}, r.Groups[2].Members)
	assert.Equal(t, 24, r.Groups[3].Channels)
}

func tableBytes(t *testing.T, states []*calib.State) string {
	t.Helper()
	s := calib.NewSession(calib.SessionOptions{})
	for i, st := range states {
		require.NoError(t, s.MergeState(st, fmt.Sprint("state ", i)))
	}
	tab, err := s.Table(calib.DefaultOptions(calib.MethodEntropy))
	require.NoError(t, err)
	b, err := tab.Marshal()
	require.NoError(t, err)
	return string(b)
}

// N shards (each with several workers and another batch size) merged give the same table
// bytes as one single-worker run; the batch count is the number of windows.
func TestShardsAndWorkersMergeExactly(t *testing.T) {
	m, docs, data := tinyCorpus(t, 50, 2)
	one, err := Run(m, data, nil, baseOptions())
	require.NoError(t, err)
	whole := one.State("whole")
	require.Equal(t, len(cutWindows(docs, 16)), whole.Batches)
	want := tableBytes(t, []*calib.State{whole})

	var states []*calib.State
	windows := 0
	for i := range 3 {
		o := baseOptions()
		o.Shard, o.Shards, o.Batch = i, 3, 2
		o.Engines = []calib.Engine{backend.NewCPU(), backend.NewCPU(), backend.NewCPU()}
		r, err := Run(m, data, nil, o)
		require.NoError(t, err)
		windows += r.Windows
		states = append(states, r.State(fmt.Sprint("shard ", i)))
	}
	require.Equal(t, whole.Batches, windows)
	require.Equal(t, want, tableBytes(t, states))

	// Shards beyond the number of windows get nothing and merge as the identity.
	o := baseOptions()
	o.Shard, o.Shards = 999, 1000
	empty, err := Run(m, data, nil, o)
	require.NoError(t, err)
	require.Zero(t, empty.Windows)
	require.Equal(t, want, tableBytes(t, []*calib.State{whole, empty.State("empty")}))
}

// Each round's threshold is the calibrator on the windows of all rounds so far: window i
// belongs to round floor(i*R/W), so round r ends before window ceil((r+1)*W/R).
func TestRoundsAreCumulativePrefixes(t *testing.T) {
	m, docs, data := tinyCorpus(t, 30, 3)
	o := baseOptions()
	o.Rounds = 4
	o.Calib = calib.DefaultOptions(calib.MethodPercentile)
	r, err := Run(m, data, nil, o)
	require.NoError(t, err)
	wins := cutWindows(docs, 16)
	W := len(wins)
	require.Len(t, r.Rounds, 4)
	for ri, rd := range r.Rounds {
		end := ((ri+1)*W + 3) / 4
		tokens := 0
		for _, w := range wins[:end] {
			tokens += len(w)
		}
		assert.Equal(t, end, rd.Sequences, "round %d", ri)
		assert.Equal(t, tokens, rd.Tokens, "round %d", ri)
		direct := directHists(t, m, wins[:end])
		for gi, g := range r.Groups {
			want, err := calib.Compute(direct[g.Name], o.Calib)
			require.NoError(t, err)
			assert.Equal(t, want.Amax, rd.Results[gi].Amax, "round %d %s", ri, g.Name)
			ent, err := calib.Compute(direct[g.Name], calib.DefaultOptions(calib.MethodEntropy))
			require.NoError(t, err)
			assert.Equal(t, ent.KL, rd.KL[gi], "round %d %s: minimal KL of the entropy calibrator", ri, g.Name)
			assert.Equal(t, direct[g.Name].AbsMax, rd.AbsMax[gi], "round %d %s", ri, g.Name)
		}
	}
	// The report's last change is computed from the last two rounds.
	rep := Diagnose(r)
	for gi, tr := range rep.Tensors {
		a, b := float64(r.Rounds[2].Results[gi].Amax), float64(r.Rounds[3].Results[gi].Amax)
		require.NotNil(t, tr.LastChange)
		assert.InDelta(t, math.Abs(b-a)/a, *tr.LastChange, 1e-12)
		assert.Equal(t, *tr.LastChange <= DefaultTolerance, tr.Settled)
		require.Len(t, tr.Rounds, 4)
	}
}

// The planted outlier dimension is flagged in the inputs that come right after an RMSNorm
// (q/k/v and gate/up) and nowhere else is a channel 40x the median by construction.
func TestOutlierChannelFlagged(t *testing.T) {
	m, _, data := tinyCorpus(t, 20, 4)
	r, err := Run(m, data, nil, baseOptions())
	require.NoError(t, err)
	rep := Diagnose(r)
	for _, tr := range rep.Tensors {
		if len(tr.Members) > 1 { // q/k/v and gate/up
			require.NotEmpty(t, tr.Outliers, tr.Name)
			assert.Equal(t, outlierDim, tr.Outliers[0].Channel, tr.Name)
			assert.Greater(t, tr.Outliers[0].Ratio, DefaultOutlierRatio)
			assert.Equal(t, tr.Outliers[0].Ratio, tr.MaxChanRatio)
		}
	}
}

func TestRunErrors(t *testing.T) {
	m, _, data := tinyCorpus(t, 5, 5)
	for _, c := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.SeqLen = 1 }, "sequence length"},
		{func(o *Options) { o.Batch = 0 }, "batch"},
		{func(o *Options) { o.Shard = 2; o.Shards = 2 }, "shard 2/2"},
		{func(o *Options) { o.Rounds = 0 }, "rounds"},
		{func(o *Options) { o.Tokens = -1 }, "negative"},
	} {
		o := baseOptions()
		c.mod(&o)
		_, err := Run(m, data, nil, o)
		require.ErrorContains(t, err, c.want)
	}
	// Several workers need stateless (Dense) layers.
	w4 := tinyModel(t)
	fq, err := model.NewFakeQuantDequantized("q", make([]float32, 16*16), 16, 16, nil, quant.ActNone, 0)
	require.NoError(t, err)
	require.NoError(t, w4.SetLinear("model.layers.1.self_attn.q_proj", fq))
	o := baseOptions()
	o.Engines = []calib.Engine{backend.NewCPU(), backend.NewCPU()}
	_, err = Run(w4, data, nil, o)
	require.ErrorContains(t, err, "layer model.layers.1.self_attn.q_proj is *model.FakeQuant")

	_, err = Run(m, writeJSONL(t, nil), nil, baseOptions())
	require.ErrorContains(t, err, "no data")
	_, err = Run(m, writeJSONL(t, [][]int{{1, 2, 99}}), nil, baseOptions())
	require.ErrorContains(t, err, "outside the vocabulary")
}

// shardStates runs shards 0..n-1 of data on m (shard i with batch 2+i and i+1 CPU
// workers: neither may change the record) and returns their states and file names.
func shardStates(t *testing.T, m *model.Model, data string, n int, edit func(*Options)) ([]*calib.State, []string) {
	t.Helper()
	var states []*calib.State
	var names []string
	for i := range n {
		o := baseOptions()
		o.Shard, o.Shards, o.Batch = i, n, 2+i
		for range i + 1 {
			o.Engines = append(o.Engines, backend.NewCPU())
		}
		if edit != nil {
			edit(&o)
		}
		r, err := Run(m, data, nil, o)
		require.NoError(t, err)
		states = append(states, r.State(fmt.Sprint("shard ", i)))
		names = append(names, fmt.Sprintf("histograms-%05d-of-%05d.json", i, n))
	}
	return states, names
}

func setting(rec *calib.ShardRecord, name string) string {
	for _, s := range rec.Settings {
		if s.Name == name {
			return s.Value
		}
	}
	return ""
}

// Shards of one run carry the same settings whatever their batch size and worker count,
// form a complete set, and merge to the unsharded table.
func TestShardRecordsOfOneRunAgree(t *testing.T) {
	m, _, data := tinyCorpus(t, 40, 4)
	states, names := shardStates(t, m, data, 3, nil)
	require.NoError(t, calib.CheckShardSet(names, states))
	for i, st := range states {
		assert.Equal(t, i, st.Shard.Index)
		assert.Equal(t, 3, st.Shard.Count)
		assert.Equal(t, states[0].Shard.Settings, st.Shard.Settings)
	}
	rec := states[0].Shard
	assert.Equal(t, "16", setting(rec, "seq_len"))
	assert.Equal(t, "all", setting(rec, "split"))
	assert.Equal(t, "host f32", setting(rec, "forward"))
	assert.Equal(t, "", setting(rec, "batch"), "the host forward pass does not depend on --batch")
	assert.Equal(t, fmt.Sprint(calib.NumBins), setting(rec, calib.SettingBins))
	assert.Len(t, setting(rec, "model"), 16)
	assert.Len(t, setting(rec, "token_stream"), 16)

	whole, err := Run(m, data, nil, baseOptions())
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(whole.Total), setting(rec, "windows"))
	assert.Equal(t, tableBytes(t, []*calib.State{whole.State("whole")}), tableBytes(t, states))

	// The same data under another name and place is the same run.
	moved := filepath.Join(t.TempDir(), "moved.jsonl")
	b, err := os.ReadFile(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(moved, b, 0o644))
	movedStates, _ := shardStates(t, m, moved, 1, func(o *Options) { o.Shard, o.Shards = 1, 3 })
	require.NoError(t, calib.CheckShardSet(names, []*calib.State{states[0], movedStates[0], states[2]}))
}

// A shard of another run, mixed into a set, is refused with the setting that differs.
func TestShardRecordsOfOtherRunsDiffer(t *testing.T) {
	m, docs, data := tinyCorpus(t, 40, 4)
	states, names := shardStates(t, m, data, 2, nil)
	swapIn := func(other *calib.State) error {
		return calib.CheckShardSet(names, []*calib.State{states[0], other})
	}
	shard1 := func(m *model.Model, data string, edit func(*Options)) *calib.State {
		s, _ := shardStates(t, m, data, 2, func(o *Options) {
			if edit != nil {
				edit(o)
			}
		})
		return s[1]
	}

	err := swapIn(shard1(m, data, func(o *Options) { o.SeqLen = 12 }))
	require.ErrorContains(t, err, "shard 1 of 2 (histograms-00001-of-00002.json) has seq_len 12, shard 0 of 2 (histograms-00000-of-00002.json) has 16")
	require.ErrorContains(t, swapIn(shard1(m, data, func(o *Options) { o.Tokens = 300 })), "has tokens 300")
	require.ErrorContains(t, swapIn(shard1(tinyModelSeed(t, 8), data, nil)), "has model ")

	// Other data with the same number of windows: only the token stream tells them apart.
	other := append([][]int(nil), docs...)
	other[0] = append([]int(nil), docs[0]...)
	other[0][1] = 3 + (other[0][1]-3+1)%(m.Config.Vocab-3)
	require.ErrorContains(t, swapIn(shard1(m, writeJSONL(t, other), nil)), "has token_stream ")

	// A fake-quantized layer changes the activations though the weights stay.
	q := tinyModel(t)
	name := q.LinearNames()[0]
	d := q.Linear(name).(*model.Dense)
	fq, err := model.NewFakeQuantDequantized(name, d.W, d.N, d.K, d.Bias, quant.ActNone, 0)
	require.NoError(t, err)
	require.NoError(t, q.SetLinear(name, fq))
	require.ErrorContains(t, swapIn(shard1(q, data, func(o *Options) { o.Engines = nil })), "has model ")
}

// On the device the batch is part of the record (GPU kernels may round differently with
// the number of rows), and the forward pass is named.
func TestShardRecordDeviceForward(t *testing.T) {
	m, _, data := tinyCorpus(t, 20, 5)
	o := baseOptions()
	o.Runners = []model.Runner{&hostRunner{m: m}}
	r, err := Run(m, data, nil, o)
	require.NoError(t, err)
	rec := r.ShardRecord()
	assert.Equal(t, "device f16", setting(rec, "forward"))
	assert.Equal(t, "3", setting(rec, "batch"))
	host, err := Run(m, data, nil, baseOptions())
	require.NoError(t, err)
	err = calib.CheckShardSet([]string{"dev.json", "host.json"}, []*calib.State{
		{Shard: &calib.ShardRecord{Index: 0, Count: 2, Settings: rec.Settings}},
		{Shard: &calib.ShardRecord{Index: 1, Count: 2, Settings: host.ShardRecord().Settings}},
	})
	require.ErrorContains(t, err, "shard 1 of 2 (host.json) has forward host f32, shard 0 of 2 (dev.json) has device f16")
}
