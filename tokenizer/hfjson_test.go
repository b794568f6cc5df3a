package tokenizer

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/tiny_tokenizer.json: merges a+b (rank 0), ▁+a (1), ▁a+b (2).
func TestHFJSONHandCheckedEncodings(t *testing.T) {
	tok, err := Load("testdata/tiny_tokenizer.json")
	require.NoError(t, err)
	assert.Equal(t, 13, tok.VocabSize())
	assert.Equal(t, 1, tok.BOS())
	// "▁ab▁ab": a+b has the lowest rank, so both "ab" form first and "▁a" never does; there
	// is no "▁ ab" merge, so the result is ▁ ab ▁ ab.
	assert.Equal(t, []int{6, 10, 6, 10}, tok.Encode("ab ab", false))
	// "▁a▁c": ▁+a merges; nothing merges with c.
	assert.Equal(t, []int{1, 9, 6, 12}, tok.Encode("a c", true))
	assert.Equal(t, "a c", tok.Decode([]int{1, 9, 6, 12}))
	// 中 (E4 B8 AD) is no piece: byte fallback; d has no byte token either: <unk>.
	assert.Equal(t, []int{6, 3, 4, 5}, tok.Encode("中", false))
	assert.Equal(t, "中", tok.Decode([]int{6, 3, 4, 5}))
	assert.Equal(t, []int{6, 0}, tok.Encode("d", false))
	assert.Equal(t, []int{1}, tok.Encode("", true))
}

func TestHFJSONMergesAsPairs(t *testing.T) {
	m, err := parseMerges([]byte(`[["a", "b"], ["▁", "a b"]]`))
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"a", "b"}, {"▁", "a b"}}, m)
	_, err = parseMerges([]byte(`["ab"]`))
	assert.ErrorContains(t, err, "has no space")
}

// The llama2.c tokenizer exported as tokenizer.json (transformers' converter recipe)
// tokenizes TinyStories exactly like run.c's encoder.
func TestHFJSONFromLlama2CEncodesLikeRunC(t *testing.T) {
	l2c := loadTok512(t)
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	require.NoError(t, l2c.WriteHFJSON(p))
	hf, err := LoadHFJSON(p)
	require.NoError(t, err)
	require.NoError(t, CheckVocab(hf, 512))
	f, err := os.Open(testutil.SharedData(t, "tinystories_val.txt"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() && n < 300 {
		line := sc.Text()
		if line == "" {
			continue
		}
		want := l2c.Encode(line, true)
		require.Equal(t, want, hf.Encode(line, true), "paragraph %d: %q", n, line)
		require.Equal(t, line, hf.Decode(want))
		n++
	}
	require.Equal(t, 300, n)
}

func TestHFJSONRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		return testutil.WriteFile(t, dir, name, []byte(s))
	}
	_, err := LoadHFJSON(write("bl.json", `{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}}}`))
	assert.ErrorContains(t, err, "byte-level BPE")
	_, err = LoadHFJSON(write("wp.json", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`))
	assert.ErrorContains(t, err, "model type \"WordPiece\" is not supported")
	_, err = LoadHFJSON(write("m.json", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}`))
	assert.ErrorContains(t, err, "merge 0 (\"a\" \"c\") uses a piece missing from the vocabulary")
	_, err = LoadHFJSON(write("bad.json", `{`))
	assert.ErrorContains(t, err, "bad.json: invalid JSON")
	_, err = Load(filepath.Join(dir, "missing.json"))
	assert.ErrorContains(t, err, "missing.json")
}

func TestHFBPEAccessors(t *testing.T) {
	tok, err := LoadHFJSON("testdata/tiny_tokenizer.json")
	require.NoError(t, err)
	assert.Equal(t, "▁a", tok.Piece(9))
	assert.True(t, tok.IsSpecial(1))
	assert.False(t, tok.IsSpecial(9))
	assert.Equal(t, 0, tok.UNK())
	// merges "a b" (rank 0) -> ab (10), "▁ a" (1) -> ▁a (9), "▁a b" (2) -> ▁ab (11)
	assert.Equal(t, map[int]int{10: 0, 9: 1, 11: 2}, tok.MergeRanks())
}
