package synth_test

import (
	"testing"

	"github.com/autoq/autoq/synth"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The synthetic tokenizer has exactly the vocabulary asked for, loads in package tokenizer
// and round-trips any text; English takes fewer tokens than bytes.
func TestTokenizerJSON(t *testing.T) {
	texts := []string{
		"Once upon a time, there was a little girl named Lily. She loved to play outside.",
		"  leading spaces, tabs\tand\nnewlines  ",
		"ünïcödé → 数字 🙂 falls back to bytes",
		"<s> is text here, not a special token </s>",
		"",
	}
	for _, vocab := range []int{synth.MinVocab, 512, 32000, 128256} {
		raw, err := synth.TokenizerJSON(vocab)
		require.NoError(t, err)
		tok, err := tokenizer.ParseHFJSON("tokenizer.json", raw)
		require.NoError(t, err, "vocab %d", vocab)
		assert.Equal(t, vocab, tok.VocabSize())
		assert.Equal(t, 1, tok.BOS())
		assert.Equal(t, 0, tok.UNK())
		assert.Equal(t, "<0x41>", tok.Piece(3+0x41))
		for _, s := range texts {
			ids := tok.Encode(s, true)
			require.Equal(t, 1, ids[0])
			for _, id := range ids {
				require.True(t, id >= 0 && id < vocab)
			}
			assert.Equal(t, s, tok.Decode(ids), "vocab %d", vocab)
		}
		if vocab >= 32000 {
			ids := tok.Encode(texts[0], false)
			assert.Less(t, len(ids), len(texts[0])/2, "vocab %d: merges shorten English", vocab)
		}
	}
	_, err := synth.TokenizerJSON(synth.MinVocab - 1)
	assert.ErrorContains(t, err, "vocabulary 353 is smaller than the synthetic tokenizer's base of 354")
}
