package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Llama2C is a llama2.c tokenizer: pieces with merge scores; ids 0, 1, 2 are <unk>, <s>,
// </s>; pieces "<0xXX>" are byte-fallback tokens.
type Llama2C struct {
	pieces []string
	scores []float32
	lookup map[string]int // piece -> lowest id with that piece
	bytes  [256]int       // byte value -> id of its <0xXX> token (-1 if none)
}

const (
	llamaBOS = 1
	llamaEOS = 2
)

// LoadLlama2C reads a tok*.bin file: int32 max_token_length, then per token a float32
// score, an int32 byte length and the bytes, until the end of the file.
func LoadLlama2C(path string) (*Llama2C, error) { return loadFile(path, ParseLlama2C) }

// ParseLlama2C parses the bytes of a tok*.bin file; path names the file in errors.
func ParseLlama2C(path string, raw []byte) (*Llama2C, error) {
	if len(raw) < 4 {
		return nil, fmt.Errorf("tokenizer %s: too short for a llama2.c tokenizer (%d bytes)", path, len(raw))
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(raw)))
	var pieces []string
	var scores []float32
	for off := 4; off < len(raw); {
		if off+8 > len(raw) {
			return nil, fmt.Errorf("tokenizer %s: truncated entry for token %d at byte %d", path, len(pieces), off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(raw[off:]))
		n := int(int32(binary.LittleEndian.Uint32(raw[off+4:])))
		off += 8
		if n < 0 || n > maxLen || off+n > len(raw) {
			return nil, fmt.Errorf("tokenizer %s: token %d has a bad length %d (max %d, %d bytes left)", path, len(pieces), n, maxLen, len(raw)-off)
		}
		if math.IsNaN(float64(score)) {
			return nil, fmt.Errorf("tokenizer %s: token %d has a NaN score", path, len(pieces))
		}
		pieces = append(pieces, string(raw[off:off+n]))
		scores = append(scores, score)
		off += n
	}
	if len(pieces) < 3 {
		return nil, fmt.Errorf("tokenizer %s: only %d tokens", path, len(pieces))
	}
	return newLlama2C(pieces, scores), nil
}

func newLlama2C(pieces []string, scores []float32) *Llama2C {
	t := &Llama2C{pieces: pieces, scores: scores, lookup: make(map[string]int, len(pieces))}
	for i := range t.bytes {
		t.bytes[i] = -1
	}
	for id, p := range pieces {
		if _, dup := t.lookup[p]; !dup {
			t.lookup[p] = id
		}
		if b, ok := byteToken(p); ok && t.bytes[b] < 0 {
			t.bytes[b] = id
		}
	}
	return t
}

// byteToken parses "<0xXX>".
func byteToken(p string) (byte, bool) {
	if len(p) != 6 || !strings.HasPrefix(p, "<0x") || p[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range p[3:5] {
		b <<= 4
		switch {
		case c >= '0' && c <= '9':
			b |= byte(c - '0')
		case c >= 'A' && c <= 'F':
			b |= byte(c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			b |= byte(c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// VocabSize is the number of tokens in the file.
func (t *Llama2C) VocabSize() int { return len(t.pieces) }

// BOS is id 1.
func (t *Llama2C) BOS() int { return llamaBOS }

// Piece returns the text of id.
func (t *Llama2C) Piece(id int) string { return t.pieces[id] }

// Encode follows run.c's encode: optional BOS; a dummy-prefix " " token when text is not
// empty; each UTF-8 character (up to 4 bytes, checked on bytes, so invalid UTF-8 is
// handled the same way) looked up whole, or spelled as byte tokens; then, while any
// adjacent pair's concatenation is a piece, merge the pair whose piece scores highest
// (the leftmost among equals).
func (t *Llama2C) Encode(text string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, llamaBOS)
	}
	if text != "" {
		ids = t.appendPiece(ids, " ")
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		ids = t.appendPiece(ids, text[i:j])
		i = j
	}
	return t.merge(ids) // like run.c, over every token, BOS and dummy prefix included
}

// appendPiece appends the id of piece, or its bytes' fallback tokens (byte+3 in llama2.c
// files; the <0xXX> token's id in general).
func (t *Llama2C) appendPiece(ids []int, piece string) []int {
	if id, ok := t.lookup[piece]; ok {
		return append(ids, id)
	}
	for i := 0; i < len(piece); i++ {
		if id := t.bytes[piece[i]]; id >= 0 {
			ids = append(ids, id)
		} else {
			ids = append(ids, 0) // <unk>: the vocabulary has no byte fallback for it
		}
	}
	return ids
}

// merge applies the BPE merges. pair[i] caches the id (or -1) of ids[i]+ids[i+1], so each
// round is one scan of cached scores rather than a string concatenation per pair.
func (t *Llama2C) merge(ids []int) []int {
	if len(ids) < 2 {
		return ids
	}
	pair := make([]int, len(ids)-1)
	look := func(i int) int {
		if id, ok := t.lookup[t.pieces[ids[i]]+t.pieces[ids[i+1]]]; ok {
			return id
		}
		return -1
	}
	for i := range pair {
		pair[i] = look(i)
	}
	for {
		best, bestScore := -1, float32(-1e10)
		for i, id := range pair {
			if id >= 0 && t.scores[id] > bestScore {
				best, bestScore = i, t.scores[id]
			}
		}
		if best < 0 {
			return ids
		}
		ids[best] = pair[best]
		ids = append(ids[:best+1], ids[best+2:]...)
		pair = append(pair[:best], pair[best+1:]...)
		if best < len(pair) {
			pair[best] = look(best)
		}
		if best > 0 {
			pair[best-1] = look(best - 1)
		}
	}
}

// Decode concatenates pieces as run.c's decode does: byte tokens become their byte, and a
// piece's leading space is dropped right after BOS. BOS and EOS produce nothing.
func (t *Llama2C) Decode(ids []int) string {
	var sb strings.Builder
	prev := -1
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			sb.WriteString("\uFFFD")
			prev = id
			continue
		}
		if id == llamaBOS || id == llamaEOS {
			prev = id
			continue
		}
		p := t.pieces[id]
		if prev == llamaBOS && strings.HasPrefix(p, " ") {
			p = p[1:]
		}
		if b, ok := byteToken(p); ok {
			sb.WriteByte(b)
		} else {
			sb.WriteString(p)
		}
		prev = id
	}
	return sb.String()
}

// Score returns the merge score of id (higher merges first).
func (t *Llama2C) Score(id int) float32 { return t.scores[id] }
