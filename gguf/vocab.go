package gguf

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/tokenizer"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_attr order).
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// Vocab is a SentencePiece-style vocabulary as llama.cpp's "llama" tokenizer reads it:
// pieces with U+2581 (▁) for spaces, merge scores (higher merges first), token types, and
// the special ids.
type Vocab struct {
	Tokens        []string
	Scores        []float32
	Types         []int32
	BOS, EOS, UNK int // -1 when absent
	AddBOS        bool
}

// KVs renders the vocabulary as tokenizer.ggml.* metadata.
func (v *Vocab) KVs() ([]KV, error) {
	n := len(v.Tokens)
	if n == 0 || len(v.Scores) != n || len(v.Types) != n {
		return nil, fmt.Errorf("gguf: vocabulary has %d tokens, %d scores, %d types", n, len(v.Scores), len(v.Types))
	}
	kvs := []KV{
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", v.Tokens},
		{"tokenizer.ggml.scores", v.Scores},
		{"tokenizer.ggml.token_type", v.Types},
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"tokenizer.ggml.bos_token_id", v.BOS}, {"tokenizer.ggml.eos_token_id", v.EOS}, {"tokenizer.ggml.unknown_token_id", v.UNK}} {
		if id.id >= n {
			return nil, fmt.Errorf("gguf: vocabulary: %s %d outside the %d tokens", id.key, id.id, n)
		}
		if id.id >= 0 {
			kvs = append(kvs, KV{id.key, uint32(id.id)})
		}
	}
	return append(kvs, KV{"tokenizer.ggml.add_bos_token", v.AddBOS}, KV{"tokenizer.ggml.add_eos_token", false}), nil
}

// VocabFromLlama2C converts a llama2.c tokenizer (tok*.bin): ids 0, 1, 2 are <unk>, <s>,
// </s> (whatever the file spells them), "<0xXX>" pieces are byte tokens, spaces become ▁,
// and the file's scores are the SentencePiece scores llama2.c merges by.
func VocabFromLlama2C(t *tokenizer.Llama2C) (*Vocab, error) {
	n := t.VocabSize()
	if n < 3 {
		return nil, fmt.Errorf("gguf: llama2.c tokenizer has only %d tokens", n)
	}
	v := &Vocab{Tokens: make([]string, n), Scores: make([]float32, n), Types: make([]int32, n), BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	for id := 0; id < n; id++ {
		p := t.Piece(id)
		v.Scores[id] = t.Score(id)
		switch {
		case id < 3:
			v.Tokens[id] = [3]string{"<unk>", "<s>", "</s>"}[id]
			v.Types[id] = [3]int32{TokenUnknown, TokenControl, TokenControl}[id]
		case isByteToken(p):
			v.Tokens[id], v.Types[id] = p, TokenByte
		default:
			v.Tokens[id], v.Types[id] = strings.ReplaceAll(p, " ", "▁"), TokenNormal
		}
	}
	return v, nil
}

// VocabFromHF converts a Hugging Face tokenizer.json of the SentencePiece-BPE kind (Llama
// 1/2, TinyLlama, Mistral). tokenizer.json keeps merge ranks, not scores; a piece made by a
// merge gets score -rank (so llama.cpp, which merges the highest-scoring piece first,
// merges in rank order, as HF does), other pieces score 0. Ids the file leaves unused
// become "[UNUSED_<id>]" tokens of type unused.
func VocabFromHF(t *tokenizer.HFBPE) (*Vocab, error) {
	n := t.VocabSize()
	ranks := t.MergeRanks()
	v := &Vocab{Tokens: make([]string, n), Scores: make([]float32, n), Types: make([]int32, n), BOS: t.BOS(), EOS: -1, UNK: t.UNK(), AddBOS: t.BOS() >= 0}
	for id := 0; id < n; id++ {
		p := t.Piece(id)
		if r, ok := ranks[id]; ok {
			v.Scores[id] = -float32(r)
		}
		switch {
		case p == "":
			v.Tokens[id], v.Types[id] = fmt.Sprintf("[UNUSED_%d]", id), TokenUnused
		case id == v.UNK:
			v.Tokens[id], v.Types[id] = p, TokenUnknown
		case t.IsSpecial(id):
			v.Tokens[id], v.Types[id] = p, TokenControl
		case isByteToken(p):
			v.Tokens[id], v.Types[id] = p, TokenByte
		default:
			v.Tokens[id], v.Types[id] = p, TokenNormal
		}
		if p == "</s>" {
			v.EOS = id
		}
	}
	return v, nil
}

// LoadVocab reads a tokenizer (tokenizer.json, a directory holding one, or a llama2.c
// tok*.bin) as a GGUF vocabulary.
func LoadVocab(path string) (*Vocab, error) {
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case *tokenizer.Llama2C:
		return VocabFromLlama2C(t)
	case *tokenizer.HFBPE:
		return VocabFromHF(t)
	}
	return nil, fmt.Errorf("gguf: %s: unsupported tokenizer %T", path, tok)
}

func isByteToken(p string) bool {
	if len(p) != 6 || !strings.HasPrefix(p, "<0x") || p[5] != '>' {
		return false
	}
	for _, c := range p[3:5] {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
