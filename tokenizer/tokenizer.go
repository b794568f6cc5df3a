package tokenizer

import (
	"fmt"
	"os"
	"path/filepath"
)

// Tokenizer encodes text to ids and decodes ids to text.
type Tokenizer interface {
	// Encode tokenizes text; with bos the beginning-of-sequence id comes first.
	Encode(text string, bos bool) []int
	// Decode turns ids back into text. BOS/EOS produce nothing; the space that Encode puts
	// before the text is dropped after a BOS, so Decode(Encode(s, true)) == s.
	Decode(ids []int) string
	// VocabSize is the number of ids.
	VocabSize() int
	// BOS is the beginning-of-sequence id.
	BOS() int
}

// Load reads a tokenizer: a Hugging Face tokenizer.json (by name or when given a directory
// holding one), otherwise a llama2.c tokenizer file.
func Load(path string) (Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	// Explicit nil checks: a nil *HFBPE or *Llama2C must not become a non-nil Tokenizer.
	if filepath.Ext(path) == ".json" {
		t, err := LoadHFJSON(path)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	t, err := LoadLlama2C(path)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// loadFile reads path and parses its bytes with parse (which names path in its errors); a
// read error gets the "tokenizer: " prefix every error of this package has.
func loadFile[T any](path string, parse func(path string, raw []byte) (T, error)) (T, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("tokenizer: %w", err)
	}
	return parse(path, raw)
}

// CheckVocab returns an error when the tokenizer's vocabulary differs from the model's.
func CheckVocab(t Tokenizer, modelVocab int) error {
	if t.VocabSize() != modelVocab {
		return fmt.Errorf("tokenizer has %d tokens but the model's vocabulary has %d: they do not belong together", t.VocabSize(), modelVocab)
	}
	return nil
}
