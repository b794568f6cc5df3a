package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textSniffBytes is how much of a text file CheckData reads: enough to tell text from a
// binary file or a wrong encoding, cheap for any size.
const textSniffBytes = 1 << 20

// minPrintable is the share of printable characters (letters, digits, punctuation, symbols,
// spaces) a text file must have in its first textSniffBytes.
const minPrintable = 0.95

// CheckData looks at a data file before any model is loaded: a .jsonl file must hold one
// JSON array of token ids per non-empty line, each in [0, vocab) (vocab <= 0: not
// checked); any other file must be UTF-8 text whose start is mostly printable. The error
// names the file and, for jsonl, the line and token.
func CheckData(path string, vocab int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	if isJSONL(path) {
		return checkJSONL(path, f, vocab)
	}
	b, err := io.ReadAll(io.LimitReader(f, textSniffBytes))
	if err != nil {
		return fmt.Errorf("data: %s: %w", path, err)
	}
	if len(b) == 0 {
		return fmt.Errorf("data: %s is empty", path)
	}
	var printable, total int
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if len(b)-i < utf8.UTFMax && len(b) == textSniffBytes {
				break // a character cut by the sniff limit
			}
			return fmt.Errorf("data: %s is not UTF-8 text (invalid byte 0x%02x at offset %d): give a text file, or token ids as .jsonl", path, b[i], i)
		}
		total++
		if unicode.IsPrint(r) || unicode.IsSpace(r) {
			printable++
		}
		i += n
	}
	if share := float64(printable) / float64(total); share < minPrintable {
		return fmt.Errorf("data: %s does not look like text: only %.0f%% of its first %d characters are printable (want >= %.0f%%)", path, 100*share, total, 100*minPrintable)
	}
	return nil
}

func checkJSONL(path string, f io.Reader, vocab int) error {
	limit := vocab
	if vocab <= 0 { // no model to check against: only negative ids are refused
		limit = math.MaxInt
	}
	r := bufio.NewReaderSize(f, 1<<16)
	docs := 0
	for line := 1; ; line++ {
		s, err := r.ReadString('\n')
		if t := strings.TrimSpace(s); t != "" {
			ids, bad, jerr := parseIDs(t, limit)
			if jerr != nil {
				return fmt.Errorf("data: %s line %d: want a JSON array of token ids: %v", path, line, jerr)
			}
			if bad >= 0 {
				return fmt.Errorf("data: %s line %d: token %d is id %d, outside the model's vocabulary [0, %d)", path, line, bad, ids[bad], vocab)
			}
			docs++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
	}
	if docs == 0 {
		return fmt.Errorf("data: %s holds no token ids", path)
	}
	return nil
}

// isJSONL reports whether a data file holds token ids (.jsonl) rather than text.
func isJSONL(path string) bool { return strings.EqualFold(filepath.Ext(path), ".jsonl") }
