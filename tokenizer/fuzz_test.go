package tokenizer

import (
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
)

// Fuzz targets for the two tokenizer formats. Seeds are built here, plus testdata's tiny
// tokenizer.json and the real tok512.bin when ../shared/data has it; regressions found by
// fuzzing live in testdata/fuzz/FuzzX. Run one with e.g.
// `go test -run '^$' -fuzz '^FuzzParseHFJSON$' -parallel 1 ./tokenizer`.

// llama2cBytes renders a tok*.bin image.
func llama2cBytes(maxLen int32, pieces []string, scores []float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, p := range pieces {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

var fuzzTexts = []string{"", "a", "ab ab", "Once upon a time", "中文 \x00\xff", "  "}

// checkEncode encodes texts (bounded: Encode is quadratic) and checks the ids and that
// Decode does not fail on them or on ids out of range.
func checkEncode(t *testing.T, tok Tokenizer, text string) {
	t.Helper()
	if len(text) > 256 {
		text = text[:256]
	}
	for _, s := range append(fuzzTexts, text) {
		for _, bos := range []bool{false, true} {
			ids := tok.Encode(s, bos)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) gave id %d outside [0, %d)", s, id, tok.VocabSize())
				}
			}
			_ = tok.Decode(append(ids, -1, tok.VocabSize()))
		}
	}
}

// fuzzParse fuzzes parse with (raw bytes, text): refused input must get an error naming
// the file; an accepted tokenizer must pass checkEncode on text, then check.
func fuzzParse[T Tokenizer](f *testing.F, name string, parse func(string, []byte) (T, error), check func(t *testing.T, tok T, raw []byte, text string)) {
	f.Fuzz(func(t *testing.T, raw []byte, text string) {
		tok, err := parse(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		checkEncode(t, tok, text)
		check(t, tok, raw, text)
	})
}

// FuzzParseLlama2C: any bytes give a tokenizer or an error naming the file; an accepted one
// encodes to ids in range, and its Hugging Face rendering (when it has one) parses back
// with the same vocabulary size.
func FuzzParseLlama2C(f *testing.F) {
	f.Add(llama2cBytes(4, []string{"<unk>", "<s>", "</s>", "<0x61>", "a", "b", "ab", " ", " a"}, []float32{0, 0, 0, 0, -1, -2, -3, -4, -0.5}), "ab a")
	f.Add(llama2cBytes(2, []string{"x", "x", "x"}, []float32{1, 1, 1}), "xxx")
	f.Add(llama2cBytes(1, []string{"<unk>", "<s>", "</s>"}, []float32{0, float32(math.NaN()), 0}), "")
	f.Add(llama2cBytes(1, []string{"<unk>", "<s>", "</s>toolong"}, []float32{0, 0, 0}), "")
	f.Add([]byte{1, 0}, "")
	if p := testutil.SharedDataIfPresent(f, "tok512.bin"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, "Once upon a time")
	}
	fuzzParse(f, "fuzz/tok.bin", ParseLlama2C, func(t *testing.T, tok *Llama2C, _ []byte, _ string) {
		hf, err := tok.HFJSON()
		if err != nil {
			return // e.g. a piece occurs twice: refused, fine
		}
		back, err := ParseHFJSON("fuzz/tokenizer.json", hf)
		if err != nil {
			t.Fatalf("rendered tokenizer.json does not parse: %v", err)
		}
		if back.VocabSize() != tok.VocabSize() || back.BOS() != tok.BOS() {
			t.Fatalf("rendered tokenizer has %d ids, BOS %d; want %d, %d", back.VocabSize(), back.BOS(), tok.VocabSize(), tok.BOS())
		}
	})
}

// FuzzParseHFJSON: any bytes give a tokenizer or an error naming the file; an accepted one
// encodes to ids in range, and deterministically (two parses encode alike: no dependence
// on map order).
func FuzzParseHFJSON(f *testing.F) {
	tiny, err := os.ReadFile("testdata/tiny_tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny, "ab ab a c 中 d")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}`), "abab")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":0,"ab":2},"merges":["a b"]}}`), "ab")
	f.Add([]byte(`{"added_tokens":[{"id":-1,"content":"<s>"}],"model":{"type":"BPE","vocab":{"a":0}}}`), "a")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":4611686018427387904}}}`), "a")
	f.Add([]byte(`{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0}}}`), "")
	f.Add([]byte(`{"model":{"type":"WordPiece"}}`), "")
	const name = "fuzz/tokenizer.json"
	fuzzParse(f, name, ParseHFJSON, func(t *testing.T, tok *HFBPE, raw []byte, text string) {
		again, err := ParseHFJSON(name, raw)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if len(text) > 256 {
			text = text[:256]
		}
		for _, s := range append(fuzzTexts, text) {
			if a, b := tok.Encode(s, true), again.Encode(s, true); !slices.Equal(a, b) {
				t.Fatalf("Encode(%q) differs between two parses of the same file: %v vs %v", s, a, b)
			}
			ids := tok.Encode(s, false)
			if a, b := tok.Decode(ids), again.Decode(ids); a != b {
				t.Fatalf("Decode(%v) differs between two parses: %q vs %q", ids, a, b)
			}
		}
	})
}
