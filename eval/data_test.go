package eval

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// byteTok is a test tokenizer: BOS = 1, each byte b is id b + 2.
type byteTok struct{}

func (byteTok) Encode(s string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, 1)
	}
	for i := 0; i < len(s); i++ {
		ids = append(ids, int(s[i])+2)
	}
	return ids
}
func (byteTok) Decode(ids []int) string { return "" }
func (byteTok) VocabSize() int          { return 258 }
func (byteTok) BOS() int                { return 1 }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// openData writes content to a file called name and opens its windows (tok and vocab as for
// OpenWindows); they are closed when the test ends.
func openData(t *testing.T, name, content string, tok tokenizer.Tokenizer, vocab int, opt DataOptions) *Windows {
	t.Helper()
	w, err := OpenWindows(writeFile(t, name, content), tok, vocab, opt)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func drain(t *testing.T, w *Windows) [][]int {
	t.Helper()
	out, err := ReadAll(w)
	require.NoError(t, err)
	return out
}

func ids(s string) []int { return byteTok{}.Encode(s, false) }

func TestWindowsCutTheDocumentStream(t *testing.T) {
	// Two paragraphs (the first spans two lines), blank lines around them.
	w := openData(t, "d.txt", "\nab\ncd\n\n\nefg\n", byteTok{}, 258, DataOptions{SeqLen: 4})
	// stream: BOS a b \n c d BOS e f g
	stream := append(append([]int{1}, ids("ab\ncd")...), append([]int{1}, ids("efg")...)...)
	assert.Equal(t, [][]int{stream[0:4], stream[4:8], stream[8:10]}, drain(t, w))
	assert.Equal(t, 10, w.Tokens())
	assert.Equal(t, 2, w.Documents())
}

func TestWindowsMaxTokensAndSkip(t *testing.T) {
	w := openData(t, "d.txt", "abcdefghij\n", byteTok{}, 258, DataOptions{SeqLen: 4, MaxTokens: 7, SkipTokens: 2})
	s := ids("bcdefghij") // BOS and "a" skipped
	assert.Equal(t, [][]int{s[0:4], s[4:7]}, drain(t, w))
}

func TestWindowsSplitsAreDisjointHalves(t *testing.T) {
	content := "aaaa\n\nbbbb\n\ncccc\n\ndddd\n" // 22 bytes: half = 11 -> a, b | c, d
	get := func(split string) [][]int {
		return drain(t, openData(t, "d.txt", content, byteTok{}, 258, DataOptions{SeqLen: 100, Split: split}))
	}
	calib, evalW, all := get("calib"), get("eval"), get("all")
	doc := func(s string) []int { return append([]int{1}, ids(s)...) }
	assert.Equal(t, [][]int{append(doc("aaaa"), doc("bbbb")...)}, calib)
	assert.Equal(t, [][]int{append(doc("cccc"), doc("dddd")...)}, evalW)
	assert.Equal(t, [][]int{append(calib[0], evalW[0]...)}, all)
}

func TestWindowsJSONLines(t *testing.T) {
	w := openData(t, "d.jsonl", "[1, 5, 6]\n\n[1, 7]\n", nil, 10, DataOptions{SeqLen: 3})
	assert.Equal(t, [][]int{{1, 5, 6}, {1, 7}}, drain(t, w))

	for _, c := range []struct{ name, content, want string }{
		{"bad.jsonl", "[1, 5]\n[1, 12]\n", "bad.jsonl line 2: token 1 is id 12, outside the vocabulary [0, 10)"},
		{"bad2.jsonl", "{\"x\": 1}\n", "bad2.jsonl line 1: want a JSON array of token ids"},
	} {
		_, err := openData(t, c.name, c.content, nil, 10, DataOptions{SeqLen: 8}).Next()
		assert.ErrorContains(t, err, c.want)
	}
}

func TestWindowsErrors(t *testing.T) {
	p := writeFile(t, "empty.txt", "\n\n")
	w, err := OpenWindows(p, byteTok{}, 258, DataOptions{SeqLen: 8})
	require.NoError(t, err)
	_, err = w.Next()
	assert.ErrorContains(t, err, "empty.txt: no data")
	w.Close()

	_, err = OpenWindows(p, byteTok{}, 512, DataOptions{SeqLen: 8})
	assert.ErrorContains(t, err, "tokenizer has 258 tokens but the model's vocabulary has 512")
	_, err = OpenWindows(p, nil, 258, DataOptions{SeqLen: 8})
	assert.ErrorContains(t, err, "needs a tokenizer")
	_, err = OpenWindows(p, byteTok{}, 258, DataOptions{SeqLen: 1})
	assert.ErrorContains(t, err, "at least 2")
	_, err = OpenWindows(p, byteTok{}, 258, DataOptions{SeqLen: 8, Split: "train"})
	assert.ErrorContains(t, err, "unknown split \"train\"")
	_, err = OpenWindows(filepath.Join(t.TempDir(), "nope.txt"), byteTok{}, 258, DataOptions{SeqLen: 8})
	assert.ErrorContains(t, err, "nope.txt")
}

func TestWindowsStripParagraphWhitespace(t *testing.T) {
	// Leading/trailing spaces and tabs of a paragraph are stripped (llama2.c's text.strip());
	// whitespace inside it (the end of a line that is not the last) is kept. CRLF endings too.
	w := openData(t, "d.txt", "  ab \r\n cd\t \r\n\r\n\tefg  \n", byteTok{}, 258, DataOptions{SeqLen: 100})
	stream := append(append([]int{1}, ids("ab \n cd")...), append([]int{1}, ids("efg")...)...)
	assert.Equal(t, [][]int{stream}, drain(t, w))
}
