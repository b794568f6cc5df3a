// Package tokenizer turns text into token ids and back for Llama-family models, behind one
// interface:
//
//   - llama2.c tokenizer files (tok*.bin): BPE by merge score exactly as llama2.c's run.c
//     encodes (a dummy-prefix space, UTF-8 characters looked up whole with byte fallback to
//     <0xXX> tokens, then repeatedly merging the adjacent pair whose merged piece has the
//     highest score, leftmost on ties);
//   - Hugging Face tokenizer.json files of the Llama/SentencePiece kind (model type BPE with
//     byte_fallback, "▁" for spaces, ranked merges).
//
// github.com/sugarme/tokenizer (v0.3.0) was evaluated for tokenizer.json: its BPE model has no
// byte_fallback (only its Unigram model does), so Llama vocabularies would lose every
// character outside the vocabulary, and it brings six further dependencies; the reader
// here is small and covers exactly the Llama kind.
//
// Load picks the reader from the file; CheckVocab reports a tokenizer that does not match a
// model's vocabulary.
package tokenizer
