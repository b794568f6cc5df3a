package eval

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/autoq/autoq/tokenizer"
)

// DataOptions says which tokens of a data file to use (see the package comment).
type DataOptions struct {
	SeqLen     int    // window length in tokens (>= 2)
	MaxTokens  int    // cap on the tokens used; 0 = all
	Split      string // "all" (or ""), "calib" or "eval"
	SkipTokens int    // tokens dropped from the start of the (split) stream
}

// Windows streams token windows from a data file. Memory does not depend on the file size.
type Windows struct {
	path    string
	f       io.Closer
	r       *bufio.Reader
	tok     tokenizer.Tokenizer
	vocab   int
	opt     DataOptions
	jsonl   bool
	half    int64 // split point in bytes
	off     int64 // bytes read so far
	line    int
	pending []int // tokens read but not yet windowed
	skip    int
	used    int // tokens handed out
	docs    int
	eof     bool
}

// OpenWindows opens path. tok may be nil for a .jsonl file of ids; vocab (> 0) is the
// model's vocabulary, checked against the tokenizer and every id.
func OpenWindows(path string, tok tokenizer.Tokenizer, vocab int, opt DataOptions) (*Windows, error) {
	if opt.SeqLen < 2 {
		return nil, fmt.Errorf("eval: sequence length must be at least 2, got %d", opt.SeqLen)
	}
	if opt.MaxTokens < 0 || opt.SkipTokens < 0 {
		return nil, fmt.Errorf("eval: token counts must not be negative")
	}
	switch opt.Split {
	case "", "all", "calib", "eval":
	default:
		return nil, fmt.Errorf("eval: unknown split %q (want all, calib or eval)", opt.Split)
	}
	jsonl := isJSONL(path)
	if !jsonl {
		if tok == nil {
			return nil, fmt.Errorf("eval: %s is text and needs a tokenizer (or give token ids as .jsonl)", path)
		}
		if err := tokenizer.CheckVocab(tok, vocab); err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eval: %w", err)
	}
	return newWindows(path, f, st.Size(), jsonl, tok, vocab, opt), nil
}

// ReadWindows reads every window OpenWindows(path, tok, vocab, opt) gives into memory.
func ReadWindows(path string, tok tokenizer.Tokenizer, vocab int, opt DataOptions) ([][]int, error) {
	w, err := OpenWindows(path, tok, vocab, opt)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return ReadAll(w)
}

// ReadAll reads src's windows up to io.EOF.
func ReadAll(src Source) ([][]int, error) {
	var out [][]int
	for {
		w, err := src.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
}

// newWindows streams windows from f, size bytes long (for the split point); path names it.
func newWindows(path string, f io.ReadCloser, size int64, jsonl bool, tok tokenizer.Tokenizer, vocab int, opt DataOptions) *Windows {
	return &Windows{path: path, f: f, r: bufio.NewReaderSize(f, 1<<16), tok: tok, vocab: vocab,
		opt: opt, jsonl: jsonl, half: size / 2, skip: opt.SkipTokens}
}

// Close closes the file.
func (w *Windows) Close() error { return w.f.Close() }

// Tokens is the number of tokens handed out in windows so far.
func (w *Windows) Tokens() int { return w.used }

// Documents is the number of documents read so far.
func (w *Windows) Documents() int { return w.docs }

// Next returns the next window, or io.EOF when the data (or MaxTokens) is used up.
func (w *Windows) Next() ([]int, error) {
	want := w.opt.SeqLen
	if w.opt.MaxTokens > 0 {
		want = min(want, w.opt.MaxTokens-w.used)
	}
	for len(w.pending) < want && !w.eof {
		doc, err := w.nextDoc()
		if errors.Is(err, io.EOF) {
			w.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		if w.skip > 0 {
			n := min(w.skip, len(doc))
			w.skip -= n
			doc = doc[n:]
		}
		w.pending = append(w.pending, doc...)
	}
	n := min(want, len(w.pending))
	if n < 2 {
		if w.used == 0 {
			return nil, fmt.Errorf("eval: %s: no data (split %q, %d tokens skipped): need at least 2 tokens", w.path, w.opt.Split, w.opt.SkipTokens)
		}
		return nil, io.EOF
	}
	win := append([]int(nil), w.pending[:n]...)
	w.pending = append(w.pending[:0], w.pending[n:]...)
	w.used += n
	return win, nil
}

// nextDoc reads the next document of the split: a paragraph (text) or a line (jsonl).
func (w *Windows) nextDoc() ([]int, error) {
	for {
		start := w.off
		var lines []string
		for {
			s, err := w.r.ReadString('\n')
			w.off += int64(len(s))
			w.line++
			t := strings.TrimRight(s, "\r\n")
			if strings.TrimSpace(t) == "" {
				if len(lines) > 0 || err != nil {
					if err != nil && err != io.EOF {
						return nil, fmt.Errorf("eval: %s: %w", w.path, err)
					}
					if len(lines) == 0 {
						return nil, io.EOF
					}
					break
				}
				start = w.off
				continue
			}
			lines = append(lines, t)
			if w.jsonl || err != nil {
				if err != nil && err != io.EOF {
					return nil, fmt.Errorf("eval: %s: %w", w.path, err)
				}
				break
			}
		}
		inSplit := w.opt.Split == "" || w.opt.Split == "all" ||
			(w.opt.Split == "calib") == (start < w.half)
		if !inSplit {
			continue
		}
		w.docs++
		if !w.jsonl {
			// Strip the paragraph's leading and trailing whitespace, as llama2.c's TinyStories
			// pretokenizer does (text.strip()), so that perplexities compare with other tools.
			return w.tok.Encode(strings.TrimSpace(strings.Join(lines, "\n")), true), nil
		}
		ids, bad, err := parseIDs(lines[0], w.vocab)
		if err != nil {
			return nil, fmt.Errorf("eval: %s line %d: want a JSON array of token ids: %v", w.path, w.line, err)
		}
		if bad >= 0 {
			return nil, fmt.Errorf("eval: %s line %d: token %d is id %d, outside the vocabulary [0, %d)", w.path, w.line, bad, ids[bad], w.vocab)
		}
		return ids, nil
	}
}

// parseIDs parses one line of a .jsonl data file, a JSON array of token ids, and returns the
// index of the first id outside [0, vocab) as bad, or -1 when all are inside.
func parseIDs(line string, vocab int) (ids []int, bad int, err error) {
	if err := json.Unmarshal([]byte(line), &ids); err != nil {
		return nil, -1, err
	}
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return ids, i, nil
		}
	}
	return ids, -1, nil
}
