package autoquant

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/model"
)

// stream is a set of token windows cut into batches, with each batch's residual stream at
// the current block boundary `at`. States live on the executor up to a byte budget; the
// batches beyond it are spilled (written to files under dir and read back when their turn
// comes), so memory holds the boundary of at most budget bytes whatever the token count.
type stream struct {
	name    string
	ex      executor
	wins    [][]int
	ranges  [][2]int // batch i holds windows [ranges[i][0], ranges[i][1])
	states  []state  // nil when spilled
	lengths [][]int
	spill   string // directory for spilled states
	budget  int64  // bytes of resident states (0: no bound)
	used    int64
	at      int // the states are the inputs of block at
	spilled int // batches currently spilled
}

// newStream cuts wins into batches of batch windows.
func newStream(name string, ex executor, wins [][]int, batch int, budget int64, spill string) *stream {
	s := &stream{name: name, ex: ex, wins: wins, spill: spill, budget: budget}
	for b0 := 0; b0 < len(wins); b0 += batch {
		s.ranges = append(s.ranges, [2]int{b0, min(b0+batch, len(wins))})
	}
	s.states = make([]state, len(s.ranges))
	s.lengths = make([][]int, len(s.ranges))
	return s
}

func (s *stream) batches() int { return len(s.ranges) }

func (s *stream) tokens() int { return countTokens(s.wins) }

// start embeds every batch: the states become the inputs of block 0.
func (s *stream) start() error {
	s.release()
	for i, r := range s.ranges {
		st, err := s.ex.embed(s.wins[r[0]:r[1]])
		if err != nil {
			return fmt.Errorf("%s batch %d: %w", s.name, i, err)
		}
		for _, w := range s.wins[r[0]:r[1]] {
			s.lengths[i] = append(s.lengths[i], len(w))
		}
		if err := s.put(i, st); err != nil {
			return err
		}
	}
	s.at = 0
	return nil
}

// advance runs block b on every batch (b must be the boundary the states are at).
func (s *stream) advance(b int, obs *observer) error {
	if err := s.eachBatch(b, func(st state, first int) error { return s.ex.run(st, b, obs, first) }); err != nil {
		return err
	}
	s.at = b + 1
	return nil
}

// observe runs block b's statistics over every batch without moving the states.
func (s *stream) observe(b int, obs *observer) error {
	return s.eachBatch(b, func(st state, first int) error { return s.ex.observe(st, b, obs, first) })
}

// eachBatch runs f on every batch's state at boundary b (f gets the batch's first window)
// and puts the state back, also when f fails.
func (s *stream) eachBatch(b int, f func(st state, first int) error) error {
	if b != s.at {
		return fmt.Errorf("%s: states are at block %d, not %d", s.name, s.at, b)
	}
	for i := range s.ranges {
		st, err := s.get(i)
		if err != nil {
			return err
		}
		err = f(st, s.ranges[i][0])
		if perr := s.put(i, st); err == nil {
			err = perr
		}
		if err != nil {
			return fmt.Errorf("%s batch %d, block %d: %w", s.name, i, b, err)
		}
	}
	return nil
}

// fork returns an independent copy of the stream at its boundary (for a pass that runs
// the blocks after it with a changed layer, the original kept).
func (s *stream) fork(name string) (*stream, error) {
	f := &stream{name: name, ex: s.ex, wins: s.wins, ranges: s.ranges, lengths: s.lengths,
		spill: s.spill, budget: s.budget, at: s.at, states: make([]state, len(s.ranges))}
	for i := range s.ranges {
		st, err := s.get(i)
		if err != nil {
			return nil, err
		}
		c, err := s.ex.clone(st)
		if err != nil {
			return nil, err
		}
		if err := s.put(i, st); err != nil {
			return nil, err
		}
		if err := f.put(i, c); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// headChunkBytes bounds one chunk of logits: the head runs on a batch a chunk of rows at
// a time, so a stream holds one chunk of logits (8 MiB, 65 rows of a 32000-token
// vocabulary) instead of a whole batch's.
const headChunkBytes = 8 << 20

// headChunkRows is how many rows of logits of vocab entries a chunk holds (at least one).
func headChunkRows(vocab int) int { return max(1, headChunkBytes/(4*vocab)) }

// heads runs the head of every stream of ss (the same windows cut into the same batches,
// after the last block) batch by batch, a chunk of rows at a time, and hands fn each piece
// of a window a chunk holds, in order: window w (an index into the windows), positions
// [from, to), and each stream's logits of those positions (lg[k] is ss[k]'s, [to-from,
// vocab]). Scoring the pieces in the order they come adds what whole windows add, in
// the same order (eval.Accumulator.AddPositions).
func heads(ss []*stream, fn func(w, from, to int, lg [][]float32) error) error {
	return headsBy(ss, headChunkRows(ss[0].ex.model().Config.Vocab), fn)
}

// headsBy is heads in chunks of chunk rows.
func headsBy(ss []*stream, chunk int, fn func(w, from, to int, lg [][]float32) error) error {
	s0 := ss[0]
	V := s0.ex.model().Config.Vocab
	sts := make([]state, len(ss))
	for i, r := range s0.ranges {
		for k, s := range ss {
			st, err := s.get(i)
			if err != nil {
				return err
			}
			sts[k] = st
		}
		err := headPieces(ss, sts, i, r, chunk, V, fn)
		for k, s := range ss {
			if perr := s.put(i, sts[k]); err == nil {
				err = perr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// headPieces is heads on batch i (windows r) of the streams, whose states are sts.
func headPieces(ss []*stream, sts []state, i int, r [2]int, chunk, V int, fn func(w, from, to int, lg [][]float32) error) error {
	wins := ss[0].wins
	rows := 0
	for _, w := range wins[r[0]:r[1]] {
		rows += len(w)
	}
	lg := make([][]float32, len(ss))
	part := make([][]float32, len(ss))
	w, pos := r[0], 0 // the window and position of the next row
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		for k, s := range ss {
			var err error
			if lg[k], err = s.ex.headRows(sts[k], lo, hi); err != nil {
				return fmt.Errorf("%s batch %d: %w", s.name, i, err)
			}
		}
		for row := lo; row < hi; {
			n := min(len(wins[w])-pos, hi-row)
			for k := range ss {
				part[k] = lg[k][(row-lo)*V : (row-lo+n)*V]
			}
			if err := fn(w, pos, pos+n, part); err != nil {
				return err
			}
			row, pos = row+n, pos+n
			if pos == len(wins[w]) {
				w, pos = w+1, 0
			}
		}
	}
	return nil
}

// get takes batch i's state (reading it back when spilled); put returns it.
func (s *stream) get(i int) (state, error) {
	if st := s.states[i]; st != nil {
		return st, nil
	}
	raw, err := os.ReadFile(s.spillPath(i))
	if err != nil {
		return nil, fmt.Errorf("%s: reading spilled batch %d: %w", s.name, i, err)
	}
	x := make([]float32, len(raw)/4)
	for j := range x {
		x[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
	}
	h, err := model.NewHidden(x, s.lengths[i], s.ex.model().Config.Dim)
	if err != nil {
		return nil, fmt.Errorf("%s: spilled batch %d: %w", s.name, i, err)
	}
	return s.ex.fromHost(h)
}

func (s *stream) put(i int, st state) error {
	if s.states[i] != nil { // resident: nothing moves
		return nil
	}
	n := s.stateBytes(i)
	if s.budget <= 0 || s.used+n <= s.budget || s.spill == "" {
		s.states[i], s.used = st, s.used+n
		return nil
	}
	h, err := s.ex.toHost(st)
	if err != nil {
		return err
	}
	raw := make([]byte, 4*len(h.X))
	for j, v := range h.X {
		binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(v))
	}
	if err := os.MkdirAll(s.spill, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.spillPath(i), raw, 0o644); err != nil {
		return fmt.Errorf("%s: spilling batch %d: %w", s.name, i, err)
	}
	s.ex.free(st)
	s.spilled = max(s.spilled, i+1)
	return nil
}

func (s *stream) spillPath(i int) string {
	return filepath.Join(s.spill, fmt.Sprintf("%s-%04d.f32", s.name, i))
}

// release frees every state and spill file.
func (s *stream) release() {
	for i, st := range s.states {
		if st != nil {
			s.ex.free(st)
			s.states[i] = nil
		} else if s.spill != "" {
			os.Remove(s.spillPath(i))
		}
	}
	s.used = 0
}

// stateBytes is the size of batch i's residual stream (float32 rows of the model's width).
func (s *stream) stateBytes(i int) int64 {
	rows := 0
	for _, n := range s.lengths[i] {
		rows += n
	}
	return 4 * int64(rows) * int64(s.ex.model().Config.Dim)
}
