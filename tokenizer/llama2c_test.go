package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTok512(t *testing.T) *Llama2C {
	t.Helper()
	return testutil.Must(t, LoadLlama2C, testutil.SharedData(t, "tok512.bin"))
}

func TestLlama2CFileLayout(t *testing.T) {
	tok := loadTok512(t)
	assert.Equal(t, 512, tok.VocabSize())
	assert.Equal(t, "<unk>", tok.Piece(0))
	assert.Equal(t, "<0x00>", tok.Piece(3))
	assert.Equal(t, "<0xFF>", tok.Piece(258))
	assert.Equal(t, 1, tok.BOS())
}

// Hand-checked against the vocabulary: " Once" is id 403, " upon" 407, " a" 261, " time"
// 378; the dummy prefix " " merges into the first word.
func TestLlama2CKnownEncoding(t *testing.T) {
	tok := loadTok512(t)
	ids := tok.Encode("Once upon a time", true)
	assert.Equal(t, []int{1, 403, 407, 261, 378}, ids)
	var pieces []string
	for _, id := range ids[1:] {
		pieces = append(pieces, tok.Piece(id))
	}
	assert.Equal(t, []string{" Once", " upon", " a", " time"}, pieces)
	assert.Equal(t, []int{1}, tok.Encode("", true))
	assert.Empty(t, tok.Encode("", false))
}

// A character that is no piece is spelled with byte tokens (byte + 3).
func TestLlama2CByteFallback(t *testing.T) {
	tok := loadTok512(t)
	ids := tok.Encode("中", false) // UTF-8 E4 B8 AD, no piece
	require.Len(t, ids, 4)        // dummy prefix " " (410) + three bytes
	assert.Equal(t, []int{410, 0xE4 + 3, 0xB8 + 3, 0xAD + 3}, ids)
	assert.Equal(t, " 中", tok.Decode(ids))
	assert.Equal(t, "中", tok.Decode(append([]int{1}, ids...)))
}

// The reference greedy story was produced by the model token by token; decoding it and
// encoding the text again gives back the same ids (run.c's merge order reaches every
// piece the model emitted).
func TestLlama2CReencodesGreedyStory(t *testing.T) {
	tok := loadTok512(t)
	raw, err := os.ReadFile(testutil.SharedData(t, "stories260K_greedy256.json"))
	require.NoError(t, err)
	var ref struct {
		IDs []int `json:"ids"`
	}
	require.NoError(t, json.Unmarshal(raw, &ref))
	ids := append([]int{1}, ref.IDs...)
	text := tok.Decode(ids)
	assert.True(t, strings.HasPrefix(text, "Once upon a time"))
	assert.Equal(t, ids, tok.Encode(text, true))
}

func TestLlama2CRoundTripsTinyStories(t *testing.T) {
	tok := loadTok512(t)
	f, err := os.Open(testutil.SharedData(t, "tinystories_val.txt"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, chars, toks := 0, 0, 0
	for sc.Scan() && n < 400 {
		line := sc.Text()
		if line == "" {
			continue
		}
		ids := tok.Encode(line, true)
		require.Equal(t, line, tok.Decode(ids), "paragraph %d", n)
		for _, id := range ids {
			require.True(t, id >= 0 && id < 512)
		}
		n++
		chars += len(line)
		toks += len(ids)
	}
	require.Equal(t, 400, n)
	// BPE must compress: the 512-token vocabulary gives well under one token per byte.
	assert.Less(t, float64(toks)/float64(chars), 0.6)
}

func TestLlama2CBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	p := testutil.WriteFile(t, dir, "trunc.bin", good[:len(good)-3])
	_, err = LoadLlama2C(p)
	assert.ErrorContains(t, err, "trunc.bin")
	assert.ErrorContains(t, err, "token 511")
	require.NoError(t, os.WriteFile(p, []byte{1}, 0o644))
	_, err = LoadLlama2C(p)
	assert.ErrorContains(t, err, "too short")
	tok := loadTok512(t)
	assert.ErrorContains(t, CheckVocab(tok, 32000), "tokenizer has 512 tokens but the model's vocabulary has 32000")
	assert.NoError(t, CheckVocab(tok, 512))
}
