package calibrun

import (
	"hash/fnv"
	"sort"
	"strconv"

	"github.com/autoq/autoq/tokenizer"
)

// Coverage limits (documented in docs/CALIBRATION.md).
const (
	// TopTokens is how many of the most frequent tokens are listed (and whose share is given).
	TopTokens = 10
	// DuplicateLimit caps the window hashes remembered for duplicate detection (8 bytes
	// each), so memory stays bounded: windows after the first DuplicateLimit distinct ones
	// are still checked against those, but not remembered.
	DuplicateLimit = 1 << 20
)

// LengthCount is one bar of a length histogram.
type LengthCount struct {
	Length int `json:"length"` // exact length, or the lower edge of a power-of-two bucket
	Count  int `json:"count"`
}

// TokenCount is one of the most frequent tokens.
type TokenCount struct {
	ID    int     `json:"id"`
	Piece string  `json:"piece,omitempty"`
	Count int     `json:"count"`
	Share float64 `json:"share"`
}

// Coverage summarises what the model saw in this run (this shard, when sharded).
type Coverage struct {
	Sequences int `json:"sequences"`
	Tokens    int `json:"tokens"`
	// SequenceLengths counts the windows run through the model by exact length.
	SequenceLengths []LengthCount `json:"sequence_lengths"`
	// SegmentLengths counts the runs of text between BOS tokens inside windows (documents,
	// cut at window edges), in power-of-two buckets [Length, 2*Length).
	SegmentLengths []LengthCount `json:"segment_lengths"`
	VocabSeen      int           `json:"vocab_seen"`
	Vocab          int           `json:"vocab"`
	VocabShare     float64       `json:"vocab_share"`
	TopTokens      []TokenCount  `json:"top_tokens"`
	TopShare       float64       `json:"top_tokens_share"` // share of all tokens held by TopTokens
	Duplicates     int           `json:"duplicate_sequences"`
	DuplicateShare float64       `json:"duplicate_share"`
}

type coverage struct {
	tok       tokenizer.Tokenizer
	bos       int
	sequences int
	tokens    int
	counts    []int // per token id
	lengths   map[int]int
	segments  map[int]int // bucket lower edge -> count
	seen      map[uint64]struct{}
	dups      int
}

func newCoverage(vocab int, tok tokenizer.Tokenizer, bos int) *coverage {
	return &coverage{tok: tok, bos: bos, counts: make([]int, vocab), lengths: map[int]int{},
		segments: map[int]int{}, seen: map[uint64]struct{}{}}
}

func (c *coverage) add(win []int) {
	c.sequences++
	c.tokens += len(win)
	c.lengths[len(win)]++
	run := 0
	for i, t := range win {
		c.counts[t]++
		if t == c.bos && i > 0 {
			c.segments[bucket(run)]++
			run = 0
		}
		run++
	}
	c.segments[bucket(run)]++
	h := fnv.New64a()
	var b [8]byte
	for _, t := range win {
		for k := range b {
			b[k] = byte(uint64(t) >> (8 * k))
		}
		h.Write(b[:])
	}
	key := h.Sum64()
	if _, ok := c.seen[key]; ok {
		c.dups++
	} else if len(c.seen) < DuplicateLimit {
		c.seen[key] = struct{}{}
	}
}

// bucket is the power-of-two lower edge of n (n >= 1).
func bucket(n int) int {
	b := 1
	for b*2 <= n {
		b *= 2
	}
	return b
}

func (c *coverage) summary() Coverage {
	s := Coverage{Sequences: c.sequences, Tokens: c.tokens, Vocab: len(c.counts), Duplicates: c.dups,
		SequenceLengths: sortedCounts(c.lengths), SegmentLengths: sortedCounts(c.segments), TopTokens: []TokenCount{}}
	ids := make([]int, 0, len(c.counts))
	for id, n := range c.counts {
		if n > 0 {
			ids = append(ids, id)
		}
	}
	s.VocabSeen = len(ids)
	if s.Vocab > 0 {
		s.VocabShare = float64(s.VocabSeen) / float64(s.Vocab)
	}
	// Most frequent first, lower id first on ties (deterministic).
	sort.SliceStable(ids, func(i, j int) bool { return c.counts[ids[i]] > c.counts[ids[j]] })
	top := 0
	for _, id := range ids[:min(TopTokens, len(ids))] {
		tc := TokenCount{ID: id, Count: c.counts[id], Share: float64(c.counts[id]) / float64(c.tokens)}
		if c.tok != nil {
			tc.Piece = c.piece(id)
		}
		s.TopTokens = append(s.TopTokens, tc)
		top += c.counts[id]
	}
	if c.tokens > 0 {
		s.TopShare = float64(top) / float64(c.tokens)
	}
	if c.sequences > 0 {
		s.DuplicateShare = float64(c.dups) / float64(c.sequences)
	}
	return s
}

// piece shows a token as text: BOS as <s>, otherwise its decoded text, quoted so spaces
// and control characters stay visible.
func (c *coverage) piece(id int) string {
	if id == c.bos {
		return "<s>"
	}
	return strconv.Quote(c.tok.Decode([]int{id}))
}

func sortedCounts(m map[int]int) []LengthCount {
	out := make([]LengthCount, 0, len(m))
	for l, n := range m {
		out = append(out, LengthCount{Length: l, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Length < out[j].Length })
	return out
}
