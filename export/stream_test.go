package export

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
