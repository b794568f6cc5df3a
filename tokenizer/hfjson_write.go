package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
)

// HFJSON renders the llama2.c tokenizer as a Hugging Face tokenizer.json the way
// transformers' LlamaConverter turns a SentencePiece model into one: pieces with " " spelled
// "▁", ids 0-2 as the special tokens <unk>, <s>, </s>, byte_fallback on, and the merges
// built like SentencePieceExtractor: every split of a piece into two vocabulary pieces,
// ordered by the merged piece's score (highest first), then by the parts' ids.
func (t *Llama2C) HFJSON() ([]byte, error) {
	if len(t.pieces) < 3 {
		return nil, fmt.Errorf("tokenizer: too few tokens to export")
	}
	specials := []string{"<unk>", "<s>", "</s>"}
	vocab := map[string]int{}
	names := make([]string, len(t.pieces))
	normal := make([]bool, len(t.pieces))
	for id, p := range t.pieces {
		name := strings.ReplaceAll(p, " ", "▁")
		if id < 3 {
			name = specials[id]
		}
		if _, dup := vocab[name]; dup {
			return nil, fmt.Errorf("tokenizer: piece %q occurs twice (id %d)", name, id)
		}
		vocab[name] = id
		names[id] = name
		_, isByte := byteToken(p)
		normal[id] = id >= 3 && !isByte
	}
	type merge struct {
		l, r  int
		score float32
	}
	var merges []merge
	for id, name := range names {
		if !normal[id] {
			continue
		}
		var local []merge
		for i := 1; i < len(name); i++ {
			l, okL := vocab[name[:i]]
			r, okR := vocab[name[i:]]
			if okL && okR && normal[l] && normal[r] {
				local = append(local, merge{l, r, t.scores[id]})
			}
		}
		sort.Slice(local, func(a, b int) bool {
			if local[a].l != local[b].l {
				return local[a].l < local[b].l
			}
			return local[a].r < local[b].r
		})
		merges = append(merges, local...)
	}
	sort.SliceStable(merges, func(a, b int) bool { return merges[a].score > merges[b].score })
	ms := make([]string, len(merges))
	for i, m := range merges {
		ms[i] = names[m.l] + " " + names[m.r]
	}
	doc := LlamaBPE(vocab, ms)
	doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
		"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
		"pair":           []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
		"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<s>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// LlamaBPE is the tokenizer.json document of a Llama tokenizer in the form transformers'
// LlamaConverter gives a SentencePiece model: ids 0-2 the special tokens <unk>, <s>, </s>,
// pieces with " " spelled "▁", byte_fallback on; vocab maps pieces to ids, merges ("left
// right") are in priority order. Callers add what more they need (HFJSON a post_processor).
func LlamaBPE(vocab map[string]int, merges []string) map[string]any {
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	return map[string]any{
		"version":    "1.0",
		"truncation": nil, "padding": nil,
		"added_tokens": []added{{ID: 0, Content: "<unk>", Special: true}, {ID: 1, Content: "<s>", Special: true}, {ID: 2, Content: "</s>", Special: true}},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": merges},
	}
}

// WriteHFJSON writes HFJSON to path atomically.
func (t *Llama2C) WriteHFJSON(path string) error {
	b, err := t.HFJSON()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
