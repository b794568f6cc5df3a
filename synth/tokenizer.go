package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/autoq/autoq/tokenizer"
)

// The synthetic tokenizer is a SentencePiece-style BPE tokenizer.json (the kind
// tokenizer.HFBPE reads; Llama-3's real one is byte-level BPE, which autoq does not read):
// ids 0-2 are <unk>, <s>, </s>, then the 256 byte-fallback tokens <0x00>..<0xFF>, then the
// 95 characters "▁" (space) and printable ASCII, then merged pieces until the vocabulary is
// full. Pieces grow one character at a time (a piece plus a character that is not "▁", so
// "▁" only starts a piece, as in SentencePiece) and are ranked by the sum of their parts'
// ranks, with the characters ordered by English letter frequency: common letter pairs such
// as "▁t", "e▁"... merge first, so text takes fewer tokens than bytes, as with a trained
// vocabulary. Any UTF-8 text encodes (other characters fall back to bytes) and decodes back.
const (
	tokAlphabet = "▁etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789" +
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	// MinVocab is the smallest vocabulary the synthetic tokenizer fills: specials, bytes
	// and the alphabet.
	MinVocab = 3 + 256 + 95
)

// TokenizerJSON renders the synthetic tokenizer with vocab ids.
func TokenizerJSON(vocab int) ([]byte, error) {
	if vocab < MinVocab {
		return nil, fmt.Errorf("synth: vocabulary %d is smaller than the synthetic tokenizer's base of %d (specials, bytes, characters)", vocab, MinVocab)
	}
	pieces := []string{"<unk>", "<s>", "</s>"}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
	}
	ids := map[string]int{}
	for i, p := range pieces {
		ids[p] = i
	}
	chars := append([]string{"▁"}, strings.Split(strings.TrimPrefix(tokAlphabet, "▁"), "")...)
	var merges []string
	add := func(p string) bool {
		if _, dup := ids[p]; dup || len(pieces) >= vocab {
			return false
		}
		ids[p] = len(pieces)
		pieces = append(pieces, p)
		return true
	}
	for _, c := range chars {
		add(c)
	}
	ext := chars[1:] // characters that may follow: not "▁"
	level := chars
	for len(pieces) < vocab {
		var next []string
		// Diagonals d = i + j of (level[i], ext[j]), i ascending within one.
		for d := 0; len(pieces) < vocab && d <= len(level)+len(ext)-2; d++ {
			for i := max(0, d-len(ext)+1); i <= min(d, len(level)-1) && len(pieces) < vocab; i++ {
				l, r := level[i], ext[d-i]
				if add(l + r) {
					merges = append(merges, l+" "+r)
					next = append(next, l+r)
				}
			}
		}
		level = next
	}
	vmap := make(map[string]int, len(pieces))
	for i, p := range pieces {
		vmap[p] = i
	}
	doc := tokenizer.LlamaBPE(vmap, merges)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
