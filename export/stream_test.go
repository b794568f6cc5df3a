package export

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WriteStream writes the very bytes Write writes (weights, config, side files), loading
// each layer twice and nothing more; Reader decodes each layer as Read does.
func TestWriteStreamEqualsWrite(t *testing.T) {
	m, _ := testModel(t)
	tok := filepath.Join(t.TempDir(), "tokenizer.json")
	require.NoError(t, os.WriteFile(tok, []byte(`{"v":2}`), 0o644))
	m.Files, m.Extra = []string{tok}, map[string][]byte{"x.cache": []byte("cache")}
	want := filepath.Join(t.TempDir(), "want")
	require.NoError(t, Write(want, m, Options{}))

	byName := map[string]*Layer{}
	var names []string
	for i := range m.Layers {
		byName[m.Layers[i].Name] = &m.Layers[i]
		names = append([]string{m.Layers[i].Name}, names...) // any order
	}
	loads := map[string]int{}
	var written []string
	sm := &StreamModel{Config: m.Config, Dense: m.Dense, Quantized: names, Ignore: m.Ignore, Files: m.Files, Extra: m.Extra,
		Load: func(n string) (*Layer, error) {
			loads[n]++
			return byName[n], nil
		},
		Written: func(n string) { written = append(written, n) }}
	got := filepath.Join(t.TempDir(), "got")
	require.NoError(t, WriteStream(got, sm, Options{}))
	for _, f := range []string{WeightsFile, ConfigFile, "tokenizer.json", "x.cache"} {
		a, err := os.ReadFile(filepath.Join(want, f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(got, f))
		require.NoError(t, err)
		assert.Equal(t, a, b, f)
	}
	for _, n := range names {
		assert.Equal(t, 2, loads[n], n)
	}
	assert.IsIncreasing(t, written)

	ld, err := Read(got)
	require.NoError(t, err)
	r, err := OpenReader(got)
	require.NoError(t, err)
	defer r.Close()
	for _, l := range ld.Layers {
		assert.True(t, r.Quantized(l.Name))
		lz, ok, err := r.Layer(l.Name)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, l, lz, l.Name)
		r.ReleaseLayer(l.Name) // pages leave the resident set; the bytes read back the same
		again, _, err := r.Layer(l.Name)
		require.NoError(t, err)
		assert.Equal(t, l, again, "%s after ReleaseLayer", l.Name)
		assert.Equal(t, l, lz, "%s: a layer decoded before ReleaseLayer", l.Name)
	}
	_, ok, err := r.Layer("lm_head")
	assert.False(t, ok)
	assert.NoError(t, err)
	emb, err := r.Tensor("model.embed_tokens.weight")
	require.NoError(t, err)
	assert.Equal(t, m.Dense[0].T.Data, emb.Data)

	// A layer that is also a dense weight, and a layer that changes between loads, fail.
	sm.Dense = append(sm.Dense, m.Dense[0])
	sm.Dense[len(sm.Dense)-1].Name = names[0] + ".weight"
	assert.ErrorContains(t, WriteStream(filepath.Join(t.TempDir(), "x"), sm, Options{}), "both quantized and in the dense tensors")
	sm.Dense = m.Dense
	flip := 0
	sm.Load = func(n string) (*Layer, error) {
		flip++
		if flip > len(names) && n == names[1] {
			l := *byName[n]
			l.Q = byName[names[len(names)-1]].Q // another shape
			return &l, nil
		}
		return byName[n], nil
	}
	err = WriteStream(filepath.Join(t.TempDir(), "y"), sm, Options{})
	assert.ErrorContains(t, err, fmt.Sprintf("layer %q changed between its two loads", names[1]))
}

// With Section set, the dense tensors are copied file to file from their sections: the
// export is the same bytes (here: re-exporting an export, its dense tensors taken from its
// Reader), and Reader.Section locates each tensor's stored bytes.
func TestWriteStreamCopiesDenseSections(t *testing.T) {
	m, _ := testModel(t)
	first := filepath.Join(t.TempDir(), "first")
	require.NoError(t, Write(first, m, Options{}))
	r, err := OpenReader(first)
	require.NoError(t, err)
	defer r.Close()
	raw, err := os.ReadFile(filepath.Join(first, WeightsFile))
	require.NoError(t, err)
	byName := map[string]*Layer{}
	var names []string
	for i := range m.Layers {
		byName[m.Layers[i].Name] = &m.Layers[i]
		names = append(names, m.Layers[i].Name)
	}
	sm := &StreamModel{Config: m.Config, Quantized: names, Ignore: m.Ignore,
		Load:    func(n string) (*Layer, error) { return byName[n], nil },
		Section: r.Section}
	copied := 0
	for _, d := range m.Dense {
		sec, ok := r.Section(d.Name)
		require.True(t, ok, d.Name)
		assert.Equal(t, d.T.Data, raw[sec.Offset:sec.Offset+sec.Size], d.Name)
		st, err := r.Tensor(d.Name)
		require.NoError(t, err)
		sm.Dense = append(sm.Dense, safetensors.NamedTensor{Name: d.Name, T: st})
		copied++
	}
	require.Positive(t, copied)
	second := filepath.Join(t.TempDir(), "second")
	require.NoError(t, WriteStream(second, sm, Options{}))
	got, err := os.ReadFile(filepath.Join(second, WeightsFile))
	require.NoError(t, err)
	assert.Equal(t, raw, got)
	_, ok := r.Section("no.such.tensor")
	assert.False(t, ok)
}
