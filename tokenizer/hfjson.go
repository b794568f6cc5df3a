package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// HFBPE is a Hugging Face tokenizer.json of the SentencePiece-BPE kind used by Llama 1/2,
// TinyLlama and Mistral: the normalizer prepends "▁" and turns spaces into "▁", there is no
// pre-tokenizer, the model is BPE over characters with byte_fallback (<0xXX> tokens) and
// ranked merges (lower rank merges first, leftmost on ties, as HF's BPE), and the decoder
// maps "▁" back to spaces, fuses byte tokens and strips the one leading space. Byte-level
// BPE (GPT-2/Llama 3 style, "Ġ") is not this kind and is refused with a clear error.
type HFBPE struct {
	vocab    map[string]int
	pieces   []string // id -> piece ("" for holes)
	ranks    map[[2]int]int
	byteIDs  [256]int
	special  map[int]bool
	bos, unk int
	prepend  bool
}

type hfFile struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// maxVocabID bounds token ids (the largest vocabularies in use have a few 100k): a corrupt
// id must not make the id -> piece table allocate gigabytes.
const maxVocabID = 1 << 22

// LoadHFJSON reads a tokenizer.json.
func LoadHFJSON(path string) (*HFBPE, error) { return loadFile(path, ParseHFJSON) }

// ParseHFJSON parses the bytes of a tokenizer.json; path names the file in errors.
func ParseHFJSON(path string, raw []byte) (*HFBPE, error) {
	var f hfFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("tokenizer %s: invalid JSON: %v", path, err)
	}
	if f.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer %s: model type %q is not supported (autoq reads SentencePiece-style BPE)", path, f.Model.Type)
	}
	if pt := string(f.PreTokenizer); strings.Contains(pt, "ByteLevel") {
		return nil, fmt.Errorf("tokenizer %s: byte-level BPE (pre_tokenizer ByteLevel, GPT-2/Llama 3 style) is not supported; give token ids as .jsonl instead", path)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, fmt.Errorf("tokenizer %s: empty model.vocab", path)
	}
	t := &HFBPE{vocab: map[string]int{}, ranks: map[[2]int]int{}, special: map[int]bool{}, bos: -1, unk: -1,
		prepend: strings.Contains(string(f.Normalizer), "▁") || len(f.Normalizer) == 0 || string(f.Normalizer) == "null"}
	size := 0
	byID := make(map[int]string, len(f.Model.Vocab))
	for p, id := range f.Model.Vocab {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("tokenizer %s: model.vocab: piece %q has id %d outside [0, %d)", path, p, id, maxVocabID)
		}
		if q, dup := byID[id]; dup {
			a, b := min(p, q), max(p, q) // the message must not depend on map order
			return nil, fmt.Errorf("tokenizer %s: model.vocab: pieces %q and %q share id %d", path, a, b, id)
		}
		byID[id] = p
		t.vocab[p] = id
		size = max(size, id+1)
	}
	for i, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocabID {
			return nil, fmt.Errorf("tokenizer %s: added_tokens[%d] (%q) has id %d outside [0, %d)", path, i, a.Content, a.ID, maxVocabID)
		}
		size = max(size, a.ID+1)
		if a.Special {
			t.special[a.ID] = true
		}
		if a.Content == "<s>" {
			t.bos = a.ID
		}
	}
	t.pieces = make([]string, size)
	for p, id := range f.Model.Vocab {
		t.pieces[id] = p
	}
	for _, a := range f.AddedTokens {
		if t.pieces[a.ID] == "" {
			t.pieces[a.ID] = a.Content
		}
	}
	if t.bos < 0 {
		if id, ok := t.vocab["<s>"]; ok {
			t.bos = id
		}
	}
	if f.Model.UnkToken != nil {
		if id, ok := t.vocab[*f.Model.UnkToken]; ok {
			t.unk = id
		}
	}
	for i := range t.byteIDs {
		t.byteIDs[i] = -1
		if f.Model.ByteFallback {
			if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
				t.byteIDs[i] = id
			}
		}
	}
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: model.merges: %v", path, err)
	}
	for rank, m := range merges {
		a, okA := t.vocab[m[0]]
		b, okB := t.vocab[m[1]]
		if !okA || !okB {
			return nil, fmt.Errorf("tokenizer %s: merge %d (%q %q) uses a piece missing from the vocabulary", path, rank, m[0], m[1])
		}
		if _, ok := t.vocab[m[0]+m[1]]; !ok {
			return nil, fmt.Errorf("tokenizer %s: merge %d (%q %q) makes a piece missing from the vocabulary", path, rank, m[0], m[1])
		}
		if _, dup := t.ranks[[2]int{a, b}]; !dup {
			t.ranks[[2]int{a, b}] = rank
		}
	}
	return t, nil
}

// parseMerges accepts both spellings: ["a b", ...] and [["a", "b"], ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("merge %d %q has no space", i, s)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("want strings \"a b\" or pairs [\"a\", \"b\"]: %v", err)
	}
	return pairs, nil
}

// VocabSize is one more than the largest id.
func (t *HFBPE) VocabSize() int { return len(t.pieces) }

// BOS is the id of "<s>" (-1 if there is none).
func (t *HFBPE) BOS() int { return t.bos }

// Encode normalizes (prepend "▁", spaces to "▁"), splits into characters (byte tokens for
// characters outside the vocabulary), then merges the lowest-ranked adjacent pair until
// none is left.
func (t *HFBPE) Encode(text string, bos bool) []int {
	var ids []int
	if bos && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	if text == "" {
		return ids
	}
	norm := strings.ReplaceAll(text, " ", "▁")
	if t.prepend {
		norm = "▁" + norm
	}
	var word []int
	for _, r := range norm {
		s := string(r)
		if id, ok := t.vocab[s]; ok {
			word = append(word, id)
			continue
		}
		fallback := true
		for i := 0; i < len(s); i++ {
			fallback = fallback && t.byteIDs[s[i]] >= 0
		}
		switch {
		case fallback:
			for i := 0; i < len(s); i++ {
				word = append(word, t.byteIDs[s[i]])
			}
		case t.unk >= 0:
			word = append(word, t.unk)
		}
	}
	return append(ids, t.merge(word)...)
}

func (t *HFBPE) merge(w []int) []int {
	for len(w) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(w); i++ {
			if r, ok := t.ranks[[2]int{w[i], w[i+1]}]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		w[best] = t.vocab[t.pieces[w[best]]+t.pieces[w[best+1]]]
		w = append(w[:best+1], w[best+2:]...)
	}
	return w
}

// Decode joins the pieces of non-special ids, turns "▁" into spaces, byte tokens into
// bytes, and strips one leading space (HF's Llama decoder).
func (t *HFBPE) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			sb.WriteString("\uFFFD")
			continue
		}
		if t.special[id] {
			continue
		}
		p := t.pieces[id]
		if b, ok := byteToken(p); ok {
			sb.WriteByte(b)
			continue
		}
		sb.WriteString(strings.ReplaceAll(p, "▁", " "))
	}
	return strings.TrimPrefix(sb.String(), " ")
}

// Piece returns the text of id as the vocabulary spells it ("▁" for spaces; "" for an id
// the file leaves unused).
func (t *HFBPE) Piece(id int) string { return t.pieces[id] }

// IsSpecial reports whether id is a special added token (<s>, </s>, ...).
func (t *HFBPE) IsSpecial(id int) bool { return t.special[id] }

// UNK is the id of the unknown token (-1 if there is none).
func (t *HFBPE) UNK() int { return t.unk }

// MergeRanks returns, for every piece that a merge produces, the rank of the
// lowest-ranked merge producing it (lower ranks merge first).
func (t *HFBPE) MergeRanks() map[int]int {
	out := map[int]int{}
	for pair, rank := range t.ranks {
		id := t.vocab[t.pieces[pair[0]]+t.pieces[pair[1]]]
		if r, ok := out[id]; !ok || rank < r {
			out[id] = rank
		}
	}
	return out
}
