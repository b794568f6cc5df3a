package calib

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardFile writes a one-tensor state with a shard record and returns its path.
func shardFile(t *testing.T, dir, name string, index, count int, settings ...Setting) string {
	t.Helper()
	s := NewSession(SessionOptions{})
	require.NoError(t, s.Add(name, []NamedTensor{{Name: "x", T: tensor.FromF32([]float32{float32(index + 1)}, 1)}}))
	st := s.State()
	if settings == nil {
		settings = []Setting{{"seq_len", "256"}, {"model", "0123456789abcdef"}}
	}
	st.Shard = &ShardRecord{Index: index, Count: count, Settings: settings}
	p := filepath.Join(dir, name)
	require.NoError(t, WriteStateFile(p, st))
	return p
}

func TestShardSetComplete(t *testing.T) {
	dir := t.TempDir()
	files := []string{shardFile(t, dir, "c.json", 2, 3), shardFile(t, dir, "a.json", 0, 3), shardFile(t, dir, "b.json", 1, 3)}
	states, err := ReadShardSet(files)
	require.NoError(t, err)
	require.Len(t, states, 3)
	for i, st := range states { // in the order given, not by index
		assert.Equal(t, []int{2, 0, 1}[i], st.Shard.Index)
		assert.Equal(t, 3, st.Shard.Count)
	}
	one, err := ReadShardSet([]string{shardFile(t, dir, "one.json", 0, 1)})
	require.NoError(t, err)
	require.Len(t, one, 1)
}

// Every refused set names the files involved and what is wrong, as a person would say it.
func TestShardSetRefused(t *testing.T) {
	dir := t.TempDir()
	a := shardFile(t, dir, "a.json", 0, 2)
	b := shardFile(t, dir, "b.json", 1, 2)
	for _, c := range []struct {
		name  string
		files []string
		want  string
	}{
		{"missing", []string{a}, fmt.Sprintf("incomplete shard set: 1 of 2 shards given (%s); missing shard 1", a)},
		{"missing several", []string{shardFile(t, dir, "m3.json", 3, 20)},
			"missing shard 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, and 9 more"},
		{"duplicate", []string{a, b, shardFile(t, dir, "a-copy.json", 0, 2)},
			fmt.Sprintf("shard 0 of 2 appears twice: %s and %s", a, filepath.Join(dir, "a-copy.json"))},
		{"count", []string{a, shardFile(t, dir, "b3.json", 1, 3)},
			fmt.Sprintf("shard 1 of 3 (%s) comes from a 3-shard run, shard 0 of 2 (%s) from a 2-shard run", filepath.Join(dir, "b3.json"), a)},
		{"setting", []string{a, shardFile(t, dir, "b128.json", 1, 2, Setting{"seq_len", "128"}, Setting{"model", "0123456789abcdef"})},
			fmt.Sprintf("shard 1 of 2 (%s) has seq_len 128, shard 0 of 2 (%s) has 256", filepath.Join(dir, "b128.json"), a)},
		{"fingerprint", []string{shardFile(t, dir, "bm.json", 1, 2, Setting{"seq_len", "256"}, Setting{"model", "fedcba9876543210"}), a},
			"has model fedcba9876543210, shard 0 of 2"},
		{"setting missing", []string{a, shardFile(t, dir, "bs.json", 1, 2, Setting{"model", "0123456789abcdef"})},
			"has no seq_len setting, shard 0 of 2 (" + a + ") has seq_len 256"},
		{"setting extra", []string{a, shardFile(t, dir, "bx.json", 1, 2, Setting{"seq_len", "256"}, Setting{"model", "0123456789abcdef"}, Setting{"batch", "8"})},
			"has batch 8, shard 0 of 2 (" + a + ") has no batch setting"},
	} {
		_, err := ReadShardSet(c.files)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
	_, err := ReadShardSet(nil)
	require.ErrorContains(t, err, "no histogram state files")
}

// A state file from before shard records is refused with the way out; a record that cannot
// be right is refused when the file is read.
func TestShardRecordOldAndBad(t *testing.T) {
	dir := t.TempDir()
	s := NewSession(SessionOptions{})
	require.NoError(t, s.Add("b", []NamedTensor{{Name: "x", T: tensor.FromF32([]float32{1}, 1)}}))
	old := filepath.Join(dir, "histograms-00000-of-00002.json")
	require.NoError(t, WriteStateFile(old, s.State()))
	_, err := ReadShardSet([]string{old, shardFile(t, dir, "b.json", 1, 2)})
	require.ErrorContains(t, err, old+": no shard record")
	require.ErrorContains(t, err, "regenerate every shard")

	for _, c := range []struct {
		rec  ShardRecord
		want string
	}{
		{ShardRecord{Index: 2, Count: 2}, "index 2 of 2"},
		{ShardRecord{Index: -1, Count: 2}, "index -1 of 2"},
		{ShardRecord{Index: 0, Count: 0}, "index 0 of 0"},
		{ShardRecord{Index: 0, Count: 1, Settings: []Setting{{"a", "1"}, {"a", "2"}}}, `setting name "a" is empty or repeated`},
		{ShardRecord{Index: 0, Count: 1, Settings: []Setting{{"", "1"}}}, `setting name "" is empty or repeated`},
	} {
		st := s.State()
		rec := c.rec
		st.Shard = &rec
		b, err := MarshalState(st)
		require.NoError(t, err)
		_, err = ParseState("bad.json", b)
		require.ErrorContains(t, err, "bad.json: shard record: "+c.want)
	}

	// A good record survives the file.
	st := s.State()
	st.Shard = &ShardRecord{Index: 1, Count: 4, Settings: []Setting{{"seq_len", "64"}, {"model", "00ff"}}}
	b, err := MarshalState(st)
	require.NoError(t, err)
	back, err := ParseState("ok.json", b)
	require.NoError(t, err)
	require.Equal(t, st, back)
}

// The activation-dump record identifies the file list by names and sizes: the same list
// gives the same record wherever it lives; another size or another file gives another.
func TestDumpShardRecord(t *testing.T) {
	write := func(dir string, sizes ...int) []string {
		var fs []string
		for i, n := range sizes {
			p := testutil.WriteFile(t, dir, fmt.Sprintf("batch_%d.safetensors", i), make([]byte, n))
			fs = append(fs, p)
		}
		return fs
	}
	here := write(t.TempDir(), 10, 20, 30)
	there := write(t.TempDir(), 10, 20, 30)
	r0, err := DumpShardRecord(here, 0, 3, true)
	require.NoError(t, err)
	r1, err := DumpShardRecord(there, 1, 3, true)
	require.NoError(t, err)
	assert.Equal(t, r0.Settings, r1.Settings)
	assert.Equal(t, 1, r1.Index)
	v, _ := r0.setting("files")
	assert.Equal(t, "3", v)

	bigger, err := DumpShardRecord(write(t.TempDir(), 10, 20, 31), 0, 3, true)
	require.NoError(t, err)
	a, _ := r0.setting("file_list")
	b, _ := bigger.setting("file_list")
	assert.NotEqual(t, a, b)
	noChan, err := DumpShardRecord(here, 0, 3, false)
	require.NoError(t, err)
	v, _ = noChan.setting("channel_absmax")
	assert.Equal(t, "false", v)

	_, err = DumpShardRecord([]string{filepath.Join(t.TempDir(), "gone.safetensors")}, 0, 1, false)
	require.ErrorContains(t, err, "gone.safetensors")
}

// CheckShardSet, called on states in memory, refuses what ReadShardSet would not have read.
func TestCheckShardSetArguments(t *testing.T) {
	rec := &ShardRecord{Index: 0, Count: 1}
	require.ErrorContains(t, CheckShardSet(nil, nil), "0 states named by 0 files")
	require.ErrorContains(t, CheckShardSet([]string{"a", "b"}, []*State{{Shard: rec}}), "1 states named by 2 files")
	require.ErrorContains(t, CheckShardSet([]string{"a.json"}, []*State{{}}), "a.json: no shard record")
	require.ErrorContains(t, CheckShardSet([]string{"a.json"}, []*State{{Shard: &ShardRecord{Index: 1, Count: 1}}}), "a.json: shard record: index 1 of 1")
	require.NoError(t, CheckShardSet([]string{"a.json"}, []*State{{Shard: rec}}))
}
