package tokenizer

import "fmt"

// LoadHFJSON reads a Hugging Face tokenizer.json. (placeholder until implemented)
func LoadHFJSON(path string) (Tokenizer, error) {
	return nil, fmt.Errorf("tokenizer %s: tokenizer.json is not supported yet", path)
}
