package eval

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll streams every window of raw (as the data file name) and returns the windows,
// the documents read, or the error.
func readAll(name string, raw []byte, jsonl bool, opt DataOptions) ([][]int, int, error) {
	w := newWindows(name, io.NopCloser(bytes.NewReader(raw)), int64(len(raw)), jsonl, byteTok{}, 258, opt)
	defer w.Close()
	var wins [][]int
	for {
		win, err := w.Next()
		if errors.Is(err, io.EOF) {
			return wins, w.Documents(), nil
		}
		if err != nil {
			return nil, 0, err
		}
		wins = append(wins, win)
	}
}

// FuzzWindows: a data file (text or .jsonl token ids) of any bytes gives windows or an
// error naming the file. Windows hold 2..SeqLen ids in the vocabulary, at most MaxTokens
// in all; the calib and eval splits read disjoint documents that together are all of them.
// Regressions found by fuzzing live in testdata/fuzz/FuzzWindows. Run with
// `go test -run '^$' -fuzz '^FuzzWindows$' -parallel 1 ./eval`.
func FuzzWindows(f *testing.F) {
	f.Add([]byte("one paragraph\nstill it\n\nsecond\r\n\r\n\n\nthird"), false, uint8(4), uint16(0))
	f.Add([]byte("[1, 2, 3]\n\n[4,5]\n[257]\n"), true, uint8(2), uint16(3))
	f.Add([]byte("[1, 2, 3]\n[258]\n"), true, uint8(8), uint16(0))
	f.Add([]byte("[1, -2]\n{\"ids\": 3}\n"), true, uint8(8), uint16(0))
	f.Add([]byte("\n\n\n"), false, uint8(2), uint16(0))
	const name = "fuzz/data.txt"
	f.Fuzz(func(t *testing.T, raw []byte, jsonl bool, seqLen uint8, maxTokens uint16) {
		opt := DataOptions{SeqLen: max(2, int(seqLen)), MaxTokens: int(maxTokens)}
		check := func(split string) (int, bool) {
			opt.Split = split
			wins, docs, err := readAll(name, raw, jsonl, opt)
			if err != nil {
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error does not name the file: %v", err)
				}
				return 0, false
			}
			total := 0
			for _, w := range wins {
				if len(w) < 2 || len(w) > opt.SeqLen {
					t.Fatalf("window of %d tokens (seq len %d)", len(w), opt.SeqLen)
				}
				for _, id := range w {
					if id < 0 || id >= 258 {
						t.Fatalf("id %d outside the vocabulary", id)
					}
				}
				total += len(w)
			}
			if opt.MaxTokens > 0 && total > opt.MaxTokens {
				t.Fatalf("%d tokens, cap %d", total, opt.MaxTokens)
			}
			return docs, true
		}
		all, okAll := check("all")
		calib, okCalib := check("calib")
		ev, okEval := check("eval")
		if opt.MaxTokens == 0 && okAll && okCalib && okEval && calib+ev != all {
			t.Fatalf("calib reads %d documents and eval %d, all %d", calib, ev, all)
		}
	})
}
