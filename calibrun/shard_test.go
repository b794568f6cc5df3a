package calibrun

import (
	"fmt"
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
	m := tinyModel(t)
	data := writeJSONL(t, randomDocs(40, m.Config.Vocab, 4))
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
	m := tinyModel(t)
	docs := randomDocs(40, m.Config.Vocab, 4)
	data := writeJSONL(t, docs)
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
	m := tinyModel(t)
	data := writeJSONL(t, randomDocs(20, m.Config.Vocab, 5))
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
